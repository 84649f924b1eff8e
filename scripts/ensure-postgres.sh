#!/usr/bin/env bash
# Make sure a PostgreSQL answers on 127.0.0.1:5432 for the test suite.
# Starts the Debian cluster if it is installed but down; installs Debian's `postgresql`
# package first where it is missing (needs root). Tests create their own fresh database.
set -euo pipefail
HOST=127.0.0.1
PORT=5432

ready() { pg_isready -q -h "$HOST" -p "$PORT" 2>/dev/null || (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }

if [ -n "${MONITOR_TEST_POSTGRES_URL:-}" ] || [ "${MONITOR_TEST_SKIP_POSTGRES:-}" = 1 ]; then
  exit 0
fi
if ready; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
if [ ! -d /etc/postgresql ] || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  echo "PostgreSQL is not installed: installing Debian's postgresql package" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  version=$(ls /etc/postgresql | sort -V | tail -1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  # Trust local loopback connections, as on the project's machines (tests only).
  $SUDO sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  $SUDO sed -i -E 's/^(local\s+all\s+postgres\s+)\S+/\1trust/' "$hba"
fi
echo "starting PostgreSQL" >&2
$SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
for _ in $(seq 1 60); do
  if ready; then exit 0; fi
  sleep 0.5
done
echo "PostgreSQL did not come up on $HOST:$PORT" >&2
exit 1
