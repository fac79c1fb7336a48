#!/usr/bin/env bash
# Real MariaDB and PostgreSQL servers for the database tests (issue 4), on a fresh Debian 12
# machine as on a developer's: installs the packages if missing, starts the servers if they are
# not answering (without systemd: containers and CI machines often have none), waits until
# they answer. Idempotent, and quick when both already run. Needs root (or sudo).
set -euo pipefail

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
PACKAGES=(mariadb-server mariadb-client postgresql postgresql-client zstd)
WAIT_SECONDS=60

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "services: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

wait_until() {  # wait_until WHAT COMMAND...: retry for WAIT_SECONDS
  local what="$1"; shift
  for _ in $(seq "$WAIT_SECONDS"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  echo "services: $what did not start within ${WAIT_SECONDS}s" >&2
  return 1
}

mariadb_answers() { $SUDO mariadb-admin --protocol=socket ping; }
if ! mariadb_answers >/dev/null 2>&1; then
  echo "services: starting MariaDB"
  if [ ! -d /var/lib/mysql/mysql ]; then
    $SUDO mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  fi
  $SUDO install -d -o mysql -g mysql -m 0755 /run/mysqld
  $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  wait_until MariaDB mariadb_answers
fi

postgres_answers() { pg_isready -q -h /var/run/postgresql && pg_isready -q -h 127.0.0.1; }
if ! postgres_answers; then
  echo "services: starting PostgreSQL"
  version="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf "%f\n" | sort -V | tail -n 1)"
  if [ ! -d "/etc/postgresql/$version/main" ]; then
    $SUDO pg_createcluster "$version" main >/dev/null
  fi
  $SUDO install -d -o postgres -g postgres -m 2775 /var/run/postgresql
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true  # "already running" is fine
  wait_until PostgreSQL postgres_answers
fi
echo "services: MariaDB and PostgreSQL are answering"
