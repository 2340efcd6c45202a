#!/usr/bin/env bash
# Installs the local services the tests and the demo run for real: Debian's clickhouse-server and
# prometheus packages, and poppler-utils (pdftoppm) for the report tests. Idempotent; says what to do when apt cannot be used.
set -u
missing=()
command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || missing+=(clickhouse-server)
command -v prometheus >/dev/null 2>&1 || [ -x /usr/bin/prometheus ] || missing+=(prometheus)
# pdftoppm renders the local-content and tax-free PDF reports to pictures in their tests
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
[ ${#missing[@]} -eq 0 ] && exit 0

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "note: ${missing[*]} not installed and apt is not usable here." >&2
    echo "      Install them (Debian: apt-get install ${missing[*]}) to run the ClickHouse and" >&2
    echo "      Prometheus tests and the demo's analytics; everything else works without them." >&2
    exit 0
fi
echo "installing ${missing[*]} (Debian packages) ..."
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# The packages' own services are not started: our scripts run the servers as plain processes.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
