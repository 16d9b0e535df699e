# One image with every lockbridge binary; compose.yaml picks the command per service.
FROM rust:1.88-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bins

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/booking-intake /src/target/release/lock-provisioner \
     /src/target/release/notifier /src/target/release/admin /src/target/release/remotelock-sim \
     /src/target/release/libcal-connector /src/target/release/libcal-sim \
     /src/target/release/lockbridge /usr/local/bin/
COPY config /etc/lockbridge
ENV LOCKBRIDGE_CONFIG_DIR=/etc/lockbridge
USER nobody
