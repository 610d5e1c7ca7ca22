#!/usr/bin/env bash
# System tools some tests use as independent second opinions: jing (RELAX NG),
# xmllint, newsboat (a real feed reader), nginx (a real web server for the
# fetch tests' server matrix). Installed only when missing.
set -euo pipefail
need=()
command -v jing >/dev/null || need+=(jing)
command -v xmllint >/dev/null || need+=(libxml2-utils)
command -v newsboat >/dev/null || need+=(newsboat)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
  echo "install-test-tools: need root to apt-get install ${need[*]}" >&2; exit 1
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
