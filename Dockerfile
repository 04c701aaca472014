FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/placement /usr/local/bin/placement
ENV PLACEMENT_BIND_ADDRESS=0.0.0.0 PORT=8778
EXPOSE 8778
ENTRYPOINT ["placement"]
CMD ["serve"]
