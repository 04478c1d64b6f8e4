#!/usr/bin/env bash
# Installs what svd-studio needs on a fresh Debian/Ubuntu machine (Colab included):
# Debian packages (ffmpeg for video files, chromium for the browser tests, redis-server for the
# queue across several boxes and its tests) and the npm packages,
# then builds it (npm run build).
#   bash scripts/setup.sh              CPU / WebGPU (onnxruntime-node's CUDA download skipped)
#   bash scripts/setup.sh --gpu        also reads the machine (nvidia-smi: driver, each card), picks
#                                      the onnxruntime build it runs (CUDA 13 on driver 580+ with
#                                      sm_75+ cards, else the CUDA 12 build beside it), fetches that
#                                      build's CUDA provider and finds the CUDA and cuDNN libraries
#                                      it needs (system, CUDA toolkit, or the pip nvidia-* packages
#                                      of PyTorch); exits 1 saying what to install when CUDA cannot
#                                      run here (npm run svd -- doctor says the same at any time)
#   bash scripts/setup.sh --gpu-check  only that last check (after installing what it asked for)
set -euo pipefail
cd "$(dirname "$0")/.."

gpu=0
for arg in "$@"; do
  case "$arg" in
    --gpu) gpu=1 ;;
    --gpu-check) exec node_modules/.bin/tsx cli/setup-gpu.ts --check-only ;;
    *) echo "setup.sh: unknown option $arg (use --gpu, --gpu-check or nothing)" >&2; exit 2 ;;
  esac
done

need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
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
# npm start, npm run svd and npm run setup run the compiled code (dist/) and the built page (client/dist/).
npm run -s build
if [ "$gpu" -eq 1 ]; then
  # npm 11 skips dependencies' install scripts unless approved: cli/setup-gpu.ts runs
  # onnxruntime-node's own installer in the package of the build chosen for this machine.
  node_modules/.bin/tsx cli/setup-gpu.ts
fi
