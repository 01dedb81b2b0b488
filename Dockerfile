# syntax=docker/dockerfile:1
# leadscorer: a static binary on a distroless base, with the model registry
# and model files under /models. Build with `make docker`.

# Build stage: the Go version is go.mod's (a test keeps them equal).
ARG GO_VERSION=1.26.8
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# CGO_ENABLED=0: a static binary, which the distroless static base needs (no libc).
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags "-s -w -X github.com/leadscorer/leadscorer/service.Version=${VERSION}" \
      -o /out/leadscorer ./cmd/leadscorer

# Run stage: no shell, no package manager, runs as the nonroot user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/leadscorer /usr/local/bin/leadscorer
# The registry and both models; in Kubernetes a volume mounted at /models
# replaces them (deploy/k8s), so promoting or rolling back needs no new image.
COPY models/ /models/
ENV LEADSCORER_REGISTRY=/models/registry.json \
    LEADSCORER_HTTP_ADDR=0.0.0.0:9464
USER 65532:65532
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/leadscorer"]
CMD ["run"]
