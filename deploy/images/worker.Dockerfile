# radstudy-worker image, built by deploy/build-images.sh from a root
# filesystem that holds the compiled binary and the shared libraries that
# `ldd` lists for it. Nothing is pulled from a registry.
FROM scratch
COPY rootfs/ /
# A numeric uid, so that the runtime needs no user database to drop root.
USER 10001:10001
# gRPC (listen in worker.toml) and the optional metrics endpoint
# (metrics_listen).
EXPOSE 50051 9464
ENTRYPOINT ["/usr/local/bin/radstudy-worker"]
CMD ["serve", "--config", "/etc/radstudy/worker.toml"]
