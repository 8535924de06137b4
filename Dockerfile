# Multi-stage image for stave. Build stage: Debian's -dev packages and a Release build.
# Runtime stage: runtime libraries only. Not yet proven with a real build here: that, a non-root
# user, the embedded model, EXPOSE and HEALTHCHECK come with the deployment issue (#6).
FROM debian:bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends make sudo && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make deps && make build

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      libtorch1.13 libopenblas0-openmp libsentencepiece0 libabsl20220623 libgomp1 \
      libgrpc++1.51 libprotobuf32 libplplot17 plplot-driver-cairo \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/bin/stave /src/build/bin/staved /src/build/bin/libstave_sentencepiece.so /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/stave"]
