# The otpfleet image: one binary (serve, fleet, report, ...) for deploy/k8s/.
#   docker build -t registry.example/otpfleet:0.1.0 . && docker push registry.example/otpfleet:0.1.0
# Build stage: the toolchain CI builds with, pinned; Cargo.lock pins every crate (--locked).
FROM rust:1.95.0-slim-bookworm AS build
# goose's HTTP client builds its TLS library (aws-lc) from C.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin otpfleet \
    && install -D -m 0755 target/release/otpfleet /out/otpfleet

# Runtime: glibc, CA certificates (https:// targets), no shell, no package manager; the user
# nonroot (65532), as the manifests' securityContext expects.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/otpfleet /usr/local/bin/otpfleet
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/otpfleet"]
