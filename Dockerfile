# stave as a container: staved (ENTRYPOINT) and the stave client, on debian:bookworm-slim.
#
#   build:  ../shared/tools/container-check.sh build . localhost/stave:dev   (or: docker build -t stave .)
#   run:    docker run -p 50051:50051 -p 9090:9090 -p 8080:8080 stave   (the embedded default model;
#           8080: the OpenAI-compatible HTTP API)
#           docker run -p 50051:50051 -p 9090:9090 -v /path/to/models:/models \
#             -e STAVE_MODEL=/models/stories260K.bin stave --tokenizer /models/tok512.bin
#
# Build stage: Debian's -dev packages (the Makefile's list) and a Release build of the binaries.
# Runtime stage: no packages installed, only the shared libraries the binaries load, collected
# by deploy/runtime-libs.sh (which also cuts the libraries Debian's LibTorch links but never
# calls: OpenCV, FFmpeg and their trees). Image: 1.42 GB with the runtime packages, see
# docs/deployment.md for the size now and the command that measured it.
FROM debian:bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends make patchelf binutils && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# models/default is the embedded default model, served when no model is named.
RUN mkdir -p models && make deps && rm -rf /var/lib/apt/lists/* \
 && cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
 && cmake --build build -j"$(nproc)" --target stave staved stave_sentencepiece \
 && deploy/runtime-libs.sh /runtime-libs build/bin/stave build/bin/staved build/bin/libstave_sentencepiece.so

FROM debian:bookworm-slim
COPY --from=build /runtime-libs /usr/local/lib/stave
RUN echo /usr/local/lib/stave > /etc/ld.so.conf.d/stave.conf && ldconfig \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin stave \
 && mkdir -p /models /etc/stave
COPY --from=build /src/build/bin/stave /src/build/bin/staved /src/build/bin/libstave_sentencepiece.so /usr/local/bin/
COPY --from=build /src/models /usr/share/stave/models
USER stave
# Models are mounted here; STAVE_MODEL (or --model) names the one to serve. Empty: the embedded
# default model (/usr/share/stave/models/default).
VOLUME /models
ENV STAVE_MODEL=""
EXPOSE 50051 9090 8080
HEALTHCHECK --interval=15s --timeout=6s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/stave", "health", "--server", "127.0.0.1:50051", "--timeout", "5"]
ENTRYPOINT ["/usr/local/bin/staved", "--listen=0.0.0.0:50051", "--metrics-listen=0.0.0.0:9090", "--http-listen=0.0.0.0:8080"]
