#!/usr/bin/env bash
# Quickstart: installs what is missing, builds, and starts Monologue with embedded defaults
# (SQLite and keys in ./data, a supervised local rtpengine). Extra arguments go to `monologue serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/system-deps.sh
prepare runtime
exec node dist/src/cli.js serve "$@"
