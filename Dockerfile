# The metacontroller image: one static binary at /usr/bin/metacontroller on an
# empty base, run as the unprivileged uid/gid 65532.
#
#   docker build -t metacontroller-rs:dev .
#   docker run --rm metacontroller-rs:dev --version
#
# Stage 1 compiles the release binary against musl on Alpine, so it is fully
# static. Stage 2 is `scratch` with the binary, a /tmp writable by uid 65532
# and the passwd/group entries that name it (`deploy/image/rootfs/`).
#
# Name resolution. Hooks are called through reqwest, whose default resolver is
# getaddrinfo(3) run on a blocking thread. musl's getaddrinfo needs no NSS
# modules and no libc files: it reads /etc/hosts and /etc/resolv.conf itself
# and honours `search` and `ndots`, which is what the kubelet writes into every
# container's /etc/resolv.conf. So `http://my-hook.my-ns/sync` and
# `http://my-hook.my-ns.svc.cluster.local/sync` resolve in this image exactly
# as they do in a Pod with a full distribution. (A glibc binary would need
# libnss_dns and /etc/nsswitch.conf in the image; static glibc cannot load
# them at all.) TLS to the API server and to hooks is rustls with the Mozilla
# roots compiled in, so the image needs no CA bundle either; in a cluster the
# API server's CA comes from the ServiceAccount mount.
#
# The build stage pulls `rust:<version>-alpine` from a registry. Where there is
# no registry, build the binary outside (`cargo build --release --target
# x86_64-unknown-linux-musl -p metacontroller`) and use the `prebuilt` target:
#   docker build --target prebuilt --build-arg BINARY=target/x86_64-unknown-linux-musl/release/metacontroller .
# which starts FROM scratch and pulls nothing.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-alpine AS build
RUN apk add --no-cache musl-dev make
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p metacontroller \
 && install -D -m 0755 target/release/metacontroller /out/metacontroller

# A binary built outside (see above): nothing is pulled.
FROM scratch AS prebuilt
ARG BINARY=target/x86_64-unknown-linux-musl/release/metacontroller
COPY deploy/image/rootfs/etc/ /etc/
COPY --chown=65532:65532 deploy/image/rootfs/tmp/ /tmp/
COPY ${BINARY} /usr/bin/metacontroller
USER 65532:65532
ENTRYPOINT ["/usr/bin/metacontroller"]

# The default target: the binary of the build stage.
FROM scratch
COPY deploy/image/rootfs/etc/ /etc/
COPY --chown=65532:65532 deploy/image/rootfs/tmp/ /tmp/
COPY --from=build /out/metacontroller /usr/bin/metacontroller
USER 65532:65532
ENTRYPOINT ["/usr/bin/metacontroller"]
