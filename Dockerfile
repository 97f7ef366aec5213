# syntax=docker/dockerfile:1
# chat-service: a static binary on a distroless base, running as non-root.
#
#   docker build -t chat-service .
#   docker run -p 8080:8080 -v "$PWD/prod.yaml:/etc/chat/chat.yaml:ro" chat-service
#
# The image listens on 0.0.0.0:8080 (CHAT_SERVER__ADDR) and reads
# /etc/chat/chat.yaml: the shipped one (the embedded default) unless a file is
# mounted over it (the ConfigMap in deploy/k8s). CHAT_* variables override it
# as usual. Nothing is written outside /var/lib/chat (the SQLite file of the
# embedded default), so the root filesystem can be read-only.

ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV GOCACHE=/go/build-cache
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/go/build-cache \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/chat ./cmd/chat && \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/healthcheck ./cmd/healthcheck && \
    mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/chat /out/healthcheck /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/data /var/lib/chat
COPY chat.yaml /etc/chat/chat.yaml
WORKDIR /var/lib/chat
USER 65532:65532
ENV CHAT_SERVER__ADDR=0.0.0.0:8080
EXPOSE 8080
VOLUME ["/var/lib/chat"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/healthcheck", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/chat", "-config", "/etc/chat/chat.yaml"]
