#!/usr/bin/env bash
# Make sure the dashboard's browser tests have Debian's Chromium and its driver.
# Installs the `chromium` and `chromium-driver` packages where either is missing (needs
# root, or sudo). MONITOR_TEST_CHROMIUM / MONITOR_TEST_CHROMEDRIVER point the tests at
# another browser and driver instead.
set -euo pipefail
CHROMIUM=${MONITOR_TEST_CHROMIUM:-/usr/bin/chromium}
CHROMEDRIVER=${MONITOR_TEST_CHROMEDRIVER:-/usr/bin/chromedriver}

if [ -x "$CHROMIUM" ] && [ -x "$CHROMEDRIVER" ]; then
  exit 0
fi
if [ -n "${MONITOR_TEST_CHROMIUM:-}${MONITOR_TEST_CHROMEDRIVER:-}" ]; then
  echo "MONITOR_TEST_CHROMIUM/MONITOR_TEST_CHROMEDRIVER name a missing file: $CHROMIUM, $CHROMEDRIVER" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "installing Debian's chromium and chromium-driver for the browser tests" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
"$CHROMIUM" --version >&2
