# syntax=docker/dockerfile:1
# auditexport: a static binary on distroless, run as a non-root user, data in the /data volume.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/auditexport ./cmd/auditexport \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/auditexport /usr/local/bin/auditexport
# The volume's mount point must belong to the user the server runs as (nonroot, 65532).
COPY --from=build --chown=65532:65532 /out/data /data
ENV AUDITEXPORT_LISTEN=0.0.0.0:8080 \
    AUDITEXPORT_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
USER 65532:65532
# No shell or curl in the image: the binary checks its own /healthz.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/auditexport", "health", "--url", "http://127.0.0.1:8080"]
ENTRYPOINT ["/usr/local/bin/auditexport"]
CMD ["serve"]
