# Builds every binary of the workspace and ships them in one small runtime image.
# The services are chosen by the container command: billing-svc, executor-svc, gateway or mock-model.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins \
    && mkdir /out \
    && cp target/release/billing-svc target/release/executor-svc target/release/gateway target/release/mock-model /out/

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/billing --create-home billing \
    && install -d -o billing -g billing /var/lib/billing/data
COPY --from=build /out/ /usr/local/bin/
USER billing
WORKDIR /var/lib/billing
ENV LOG_FORMAT=json
