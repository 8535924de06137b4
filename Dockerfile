# stave as a container: staved (ENTRYPOINT) and the stave client, on debian:bookworm-slim.
#
#   build:  ../shared/tools/container-check.sh build . localhost/stave:dev   (or: docker build -t stave .)
#   run:    docker run -p 50051:50051 -p 9090:9090 stave      (the embedded default model)
#           docker run -p 50051:50051 -p 9090:9090 -v /path/to/models:/models \
#             -e STAVE_MODEL=/models/stories260K.bin stave --tokenizer /models/tok512.bin
#
# Build stage: Debian's -dev packages (the Makefile's list) and a Release build of the two
# binaries. Runtime stage: only the shared libraries those binaries load, found with ldd and
# dpkg -S in the build stage, so the list cannot drift from the code.
FROM debian:bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# models/default is the embedded default model, served when no model is named.
RUN mkdir -p models && make deps && rm -rf /var/lib/apt/lists/* \
 && cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
 && cmake --build build -j"$(nproc)" --target stave staved stave_sentencepiece stave_spm_train
# The Debian packages that own every library the binaries link, plus the two that are loaded at
# run time without being linked (the OpenBLAS behind libblas.so.3's alternative, PLplot's driver).
RUN for f in $(ldd build/bin/stave build/bin/staved build/bin/libstave_sentencepiece.so build/bin/stave_spm_train | awk '/=> \//{print $3}' | sort -u); do \
      dpkg -S "$f" 2>/dev/null || dpkg -S "$(realpath "$f")"; \
    done | cut -d: -f1 | sort -u > /runtime-packages \
 && echo libopenblas0-openmp plplot-driver-cairo >> /runtime-packages && cat /runtime-packages

FROM debian:bookworm-slim
COPY --from=build /runtime-packages /tmp/runtime-packages
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(cat /tmp/runtime-packages) \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin stave \
 && mkdir -p /models /etc/stave
COPY --from=build /src/build/bin/stave /src/build/bin/staved /src/build/bin/libstave_sentencepiece.so \
     /src/build/bin/stave_spm_train /usr/local/bin/
COPY --from=build /src/models /usr/share/stave/models
USER stave
# Models are mounted here; STAVE_MODEL (or --model) names the one to serve. Empty: the embedded
# default model (/usr/share/stave/models/default).
VOLUME /models
ENV STAVE_MODEL=""
EXPOSE 50051 9090
HEALTHCHECK --interval=15s --timeout=6s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/stave", "health", "--server", "127.0.0.1:50051", "--timeout", "5"]
ENTRYPOINT ["/usr/local/bin/staved", "--listen=0.0.0.0:50051", "--metrics-listen=0.0.0.0:9090"]
