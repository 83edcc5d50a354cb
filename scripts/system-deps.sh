#!/usr/bin/env bash
# Installs what Monologue needs when it is missing, then builds. Sourced by start.sh and test.sh.
# Usage: prepare runtime|test
set -euo pipefail

apt_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "monologue: need root or sudo to install: $*" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "monologue: installing Debian packages: $*" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

system_deps() {
  local missing=()
  command -v node >/dev/null || { echo "monologue: Node.js 20 or newer is required (https://nodejs.org)" >&2; exit 1; }
  command -v rtpengine >/dev/null || missing+=(rtpengine-daemon)
  if [ "${1:-runtime}" = test ]; then
    command -v sipp >/dev/null || missing+=(sip-tester)
    command -v chromium >/dev/null || missing+=(chromium)
    # Kamailio plays the record-routing proxy and the TLS front of the test trunk (sipp has no TLS).
    command -v kamailio >/dev/null || missing+=(kamailio)
    compgen -G '/usr/lib/*/kamailio/modules/tls.so' >/dev/null || compgen -G '/usr/lib/kamailio/modules/tls.so' >/dev/null || missing+=(kamailio-tls-modules)
    command -v openssl >/dev/null || missing+=(openssl)
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  fi
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

# System packages, npm dependencies (when node_modules is missing), then the build.
prepare() {
  system_deps "$1"
  [ -d node_modules ] || npm ci --no-audit --no-fund
  npm run --silent build
}
