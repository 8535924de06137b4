# stave as a container: staved (ENTRYPOINT) and the stave client, on debian:bookworm-slim.
#
#   build:  ../shared/tools/container-check.sh build . localhost/stave:dev   (or: docker build -t stave .)
#   run:    docker run -p 50051:50051 -p 9090:9090 -p 8080:8080 stave   (the embedded default model;
#           8080: the OpenAI-compatible HTTP API)
#           docker run -p 50051:50051 -p 9090:9090 -v /path/to/models:/models \
#             -e STAVE_MODEL=/models/stories260K.bin stave --tokenizer /models/tok512.bin
#
# Build stage: Debian's -dev packages (the Makefile's list) and a Release build of the binaries.
# Runtime: FROM scratch with only what the binaries load, collected by deploy/runtime-libs.sh
# (which also cuts the libraries Debian's LibTorch links but never calls: OpenCV, FFmpeg and
# their trees). The image was 1.42 GB with Debian's runtime packages; docs/deployment.md has the
# size now and the command that measured it.
FROM debian:bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends make patchelf binutils && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# models/default is the embedded default model, served when no model is named.
RUN mkdir -p models && make deps && rm -rf /var/lib/apt/lists/* \
 && cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
 && cmake --build build -j"$(nproc)" --target stave staved stave_sentencepiece \
 && deploy/runtime-libs.sh /runtime-libs build/bin/stave build/bin/staved build/bin/libstave_sentencepiece.so

# The runtime root, assembled from the build stage's Debian files: those libraries, glibc and the
# C++ runtime they need, the binaries, the default model, a passwd entry for the non-root user.
# No shell, no package manager (the distroless pattern): the image is what staved loads.
FROM build AS rootfs
RUN mkdir -p /rootfs/usr/local/lib/stave /rootfs/usr/local/bin /rootfs/usr/share/stave /rootfs/lib64 \
      /rootfs/models /rootfs/etc/stave \
 && mkdir -m 1777 /rootfs/tmp \
 && cp -a /runtime-libs/. /rootfs/usr/local/lib/stave/ \
 && for lib in $(ldd build/bin/stave build/bin/staved build/bin/libstave_sentencepiece.so | awk '/=> \// {print $3}' \
                 | grep -E '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s)\.so' | sort -u); do \
      cp -L "$lib" /rootfs/usr/local/lib/stave/; \
    done \
 && cp -L /lib64/ld-linux-x86-64.so.2 /rootfs/lib64/ \
 && echo /usr/local/lib/stave > /rootfs/etc/ld.so.conf && ldconfig -r /rootfs \
 && cp build/bin/stave build/bin/staved build/bin/libstave_sentencepiece.so /rootfs/usr/local/bin/ \
 && cp -r models /rootfs/usr/share/stave/models \
 && printf 'root:x:0:0::/root:/nonexistent\nstave:x:10001:10001::/nonexistent:/nonexistent\n' > /rootfs/etc/passwd \
 && printf 'root:x:0:\nstave:x:10001:\n' > /rootfs/etc/group \
 && chown 10001:10001 /rootfs/models /rootfs/etc/stave

FROM scratch
COPY --from=rootfs /rootfs /
USER 10001:10001
# Models are mounted here; STAVE_MODEL (or --model) names the one to serve. Empty: the embedded
# default model (/usr/share/stave/models/default).
VOLUME /models
ENV STAVE_MODEL=""
EXPOSE 50051 9090 8080
HEALTHCHECK --interval=15s --timeout=6s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/stave", "health", "--server", "127.0.0.1:50051", "--timeout", "5"]
ENTRYPOINT ["/usr/local/bin/staved", "--listen=0.0.0.0:50051", "--metrics-listen=0.0.0.0:9090", "--http-listen=0.0.0.0:8080"]
