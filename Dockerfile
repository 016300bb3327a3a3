# syntax=docker/dockerfile:1
# The pms image: one binary that runs any service (`pms gateway`, `pms patients`, ...), the
# migrations (`pms migrate [SERVICE]`) or everything at once (`pms up`). See docs/deploy.md.
#
# Build: docker build -t pms:dev .
# The binary is built by scripts/lib.sh's build_release, the same cargo command (release,
# --locked) that `scripts/up.sh` and the benchmarks run, so the image holds what was tested.

# The web app (web/): built by the same npm commands as scripts/lib.sh's ensure_web, from the
# committed package-lock.json.
FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web/ ./
RUN npm run build

FROM rust:1.95-bookworm AS build
# Beside the compilers and OpenSSL's headers that this image has: cmake for the bundled
# librdkafka, protoc with the well-known types for the .proto files (as ensure_build_tools).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake libcurl4-openssl-dev protobuf-compiler libprotobuf-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts keep the crates and build artefacts between builds (BuildKit); the binary is
# copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    bash -c '. scripts/lib.sh && build_release' \
 && install -D -m 0755 target/release/pms /out/pms

# Runtime: distroless (glibc, libgcc, OpenSSL, CA certificates, tzdata; no shell, no package
# manager), as the unprivileged user 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/pms /usr/local/bin/pms
# The front desk's web app, which the gateway serves at / (PMS_WEB_ROOT).
COPY --from=web /web/dist /usr/local/share/pms/web
USER 65532:65532
# Containers listen on every interface; each service's own port (docs/deploy.md).
ENV PMS_LOG_FORMAT=json PMS_WEB_ROOT=/usr/local/share/pms/web
EXPOSE 8080 8081 8082 8083 8084 8085 8086 50051 50053
# `pms probe` asks the service this container runs (its PMS_<NAME>_BIND) for /health/live:
# liveness, so that a database or another service being down gets no container replaced.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["/usr/local/bin/pms", "probe"]
ENTRYPOINT ["/usr/local/bin/pms"]
CMD ["up"]
