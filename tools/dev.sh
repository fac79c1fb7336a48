#!/usr/bin/env bash
# Dev mode (README): worker + dashboard on http://127.0.0.1:8765, everything under ./var/dev,
# the YunoHost simulator standing in for `yunohost` when it is not installed.
# Extra arguments go to `backupmanager dev`, e.g. ./tools/dev.sh --bind 127.0.0.1:9000
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/bootstrap.sh
exec .venv/bin/backupmanager dev --data-dir var/dev "$@"
