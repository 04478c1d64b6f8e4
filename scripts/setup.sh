#!/usr/bin/env bash
# Installs what svd-studio needs on a fresh Debian/Ubuntu machine (Colab included):
# Debian packages (ffmpeg for video files, chromium for the browser tests) and the npm packages.
#   bash scripts/setup.sh          CPU / WebGPU (onnxruntime-node's CUDA download skipped)
#   bash scripts/setup.sh --gpu    also fetches onnxruntime-node's CUDA 12 provider
set -euo pipefail
cd "$(dirname "$0")/.."

gpu=0
for arg in "$@"; do
  case "$arg" in
    --gpu) gpu=1 ;;
    *) echo "setup.sh: unknown option $arg (use --gpu or nothing)" >&2; exit 2 ;;
  esac
done

need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "setup.sh: please install ${need[*]} with your package manager" >&2
    exit 1
  fi
fi

ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
if [ "$gpu" -eq 1 ]; then
  # npm 11 skips dependencies' install scripts unless approved: run onnxruntime-node's own
  # installer directly, which downloads its CUDA 12 execution provider.
  (cd node_modules/onnxruntime-node && node script/install.js --onnxruntime-node-install=cuda12)
fi
