#!/bin/sh
# Entrypoint of the ticket-cart image: prepares the Prometheus multiprocess directory, then
# runs the command (the API by default; the worker and the migration job pass their own).
#
# Values left by an earlier run of the container would be added to the new run's, so the
# directory is emptied here, once, before any server process starts. It must never be
# emptied while processes that write to it are running.
set -eu

if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    dir=$PROMETHEUS_MULTIPROC_DIR
    mkdir -p "$dir" 2>/dev/null || true
    if [ ! -d "$dir" ] || [ ! -w "$dir" ] || ! find "$dir" -mindepth 1 -delete; then
        echo "ticket-cart: PROMETHEUS_MULTIPROC_DIR=$dir is not a writable directory;" \
            "mount an emptyDir or a tmpfs there" >&2
        exit 1
    fi
fi

exec "$@"
