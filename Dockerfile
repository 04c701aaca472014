FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev libssl-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 libssl3 ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/placement /usr/local/bin/placement
# In a container the API listens on every address.
ENV OS_SERVER__BIND_HOST=0.0.0.0
EXPOSE 8778
ENTRYPOINT ["placement"]
CMD ["serve"]
