#!/usr/bin/env bash
# System tools some tests use as independent second opinions: jing (RELAX NG),
# xmllint, newsboat (a real feed reader), nginx (a real web server for the
# fetch tests' server matrix), chromium (a real browser for the status page). Installed only when missing.
set -euo pipefail
need=()
command -v jing >/dev/null || need+=(jing)
command -v xmllint >/dev/null || need+=(libxml2-utils)
command -v newsboat >/dev/null || need+=(newsboat)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v chromium >/dev/null || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
  echo "install-test-tools: need root to apt-get install ${need[*]}" >&2; exit 1
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The tests start their own nginx on a free port; Debian's package would also start one on port 80.
# A policy-rc.d that says "no" keeps the package's service stopped (Debian's invoke-rc.d honours it).
policy=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod +x "$policy" && own_policy=1
fi
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
[ -n "$own_policy" ] && $SUDO rm -f "$policy"
exit 0
