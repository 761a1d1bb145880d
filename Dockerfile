# Builds every binary of the workspace into one slim image; compose.yaml picks the process per service.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin gateway --bin waiting-room --bin checkout-worker

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Production unless told otherwise: the processes then refuse to start without a real JWT_SECRET (and a
# development gateway would refuse to listen beyond loopback with the built-in secret anyway).
ENV APP_ENV=production
COPY --from=build /src/target/release/gateway /src/target/release/waiting-room /src/target/release/checkout-worker /usr/local/bin/
COPY web-widget /app/web-widget
USER nobody
