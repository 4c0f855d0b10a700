# Sluice in a container: a static binary on a distroless base, run as a non-root user, with
# its data in the /data volume. deploy/docker-compose.yml runs a three-node cluster from it.
#
#   docker build -t sluice:dev .
#   docker run --rm -p 9876:9876 -p 10911:10911 -p 5557:5557 -v sluice-data:/data sluice:dev \
#     dev --data /data --namesrv-addr 0.0.0.0:9876 --broker-addr <host IP>:10911 --metrics-addr 0.0.0.0:5557
#
# Health: every role serves /healthz and /readyz beside /metrics on its metrics address
# (--metrics-addr or the metricsAddr key; 'sluice dev' serves one at 127.0.0.1:5557 unless told
# otherwise, the other roles only when given one). The image has no shell or curl; its
# HEALTHCHECK runs 'sluice probe' on port 5557, which exits 0 on a 2xx answer. A container of
# another role without a metrics address on port 5557 would show as unhealthy: give it one, or
# its own healthcheck (deploy/docker-compose.yml does, per node), or run it with --no-healthcheck.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/sluice ./cmd/sluice \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sluice /usr/local/bin/sluice
# The volume's mount point, owned by the image's non-root user (65532) so a fresh named volume
# is writable.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME ["/data"]
WORKDIR /data
# name server, controller, broker (and its VIP channel, listen port - 2), metrics and health
EXPOSE 9876 9878 10911 10909 5557
HEALTHCHECK --interval=10s --timeout=4s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/sluice", "probe", "--timeout", "3s", "http://127.0.0.1:5557/readyz"]
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["-h"]
