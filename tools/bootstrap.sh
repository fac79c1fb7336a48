#!/usr/bin/env bash
# Prepare a checkout on a fresh Debian 12 machine: Debian packages, then a virtualenv in .venv
# with the pinned dependencies of sources/requirements*.lock and the package in editable mode.
# Idempotent and quick when everything is already there. Needs root (or sudo) only for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the engine and its tests call: keep in step with manifest.toml's apt resource.
APT_PACKAGES=(python3 python3-venv python3-dev build-essential tar rsync openssh-client sqlite3 util-linux
  acl attr  # setfacl / getfattr: the custom_dir tests give files ACLs and extended attributes
  shellcheck  # the package's scripts are checked by the tests
  chromium chromium-driver fonts-dejavu-core  # browser tests of the dashboard (Playwright)
)
if [ "${BACKUPMANAGER_EXTRA_APT:-}" != "" ]; then
  read -r -a extra <<<"$BACKUPMANAGER_EXTRA_APT"
  APT_PACKAGES+=("${extra[@]}")
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian 12's /usr/bin/python3 is 3.11; a python3 earlier on PATH (pyenv) is fine if it is 3.11+.
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.lock-stamp
want="$(cat sources/requirements.lock sources/requirements-dev.lock sources/pyproject.toml | sha256sum)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing Python dependencies"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r sources/requirements.lock -r sources/requirements-dev.lock
  .venv/bin/python -m pip install -q --no-deps -e sources
  echo "$want" >"$stamp"
fi
