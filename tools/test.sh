#!/usr/bin/env bash
# The project's test command (README): prepares a fresh Debian 12 machine, then lint, types, tests.
# Extra arguments go to pytest, e.g. ./tools/test.sh -k retention
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/bootstrap.sh
./tools/services.sh  # real MariaDB and PostgreSQL for the database tests (doc/databases.md)
cd sources
echo "== ruff"
../.venv/bin/ruff check . ../bench
../.venv/bin/ruff format --check . ../bench
echo "== mypy --strict"
../.venv/bin/mypy
echo "== pytest"
../.venv/bin/python -m pytest "$@"
