#!/usr/bin/env bash
# Engine benchmark vs PyTorch (on demand; see bench/engine/bench.ts for what it measures).
# Installs Debian's PyTorch and the pthread OpenBLAS when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! /usr/bin/python3 -c "import torch" >/dev/null 2>&1 || ! dpkg -s libopenblas0-pthread >/dev/null 2>&1; then
  echo "installing python3-torch and libopenblas0-pthread (apt-get)..." >&2
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-torch libopenblas0-pthread
fi
exec node --import tsx bench/engine/bench.ts "$@"
