#!/usr/bin/env bash
# Installs what svd-studio needs on a fresh Debian/Ubuntu machine (Colab included):
# Debian packages (ffmpeg for video files, chromium for the browser tests) and the npm packages,
# then builds it (npm run build).
#   bash scripts/setup.sh              CPU / WebGPU (onnxruntime-node's CUDA download skipped)
#   bash scripts/setup.sh --gpu        also fetches onnxruntime's CUDA provider and finds the CUDA
#                                      and cuDNN libraries it needs (system, CUDA toolkit, or the
#                                      pip nvidia-* packages of PyTorch); exits 1 saying what to
#                                      install when CUDA cannot run here
#   bash scripts/setup.sh --gpu-check  only that last check (after installing what it asked for)
set -euo pipefail
cd "$(dirname "$0")/.."

gpu=0
for arg in "$@"; do
  case "$arg" in
    --gpu) gpu=1 ;;
    --gpu-check) exec node_modules/.bin/tsx cli/cuda-check.ts ;;
    *) echo "setup.sh: unknown option $arg (use --gpu, --gpu-check or nothing)" >&2; exit 2 ;;
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
# npm start, npm run svd and npm run setup run the compiled code (dist/) and the built page (client/dist/).
npm run -s build
if [ "$gpu" -eq 1 ]; then
  # npm 11 skips dependencies' install scripts unless approved: run onnxruntime-node's own
  # installer directly. Its "cuda12" manifest downloads NuGet's Microsoft.ML.OnnxRuntime.Gpu.Linux
  # of the same version and copies libonnxruntime_providers_{cuda,shared,tensorrt}.so into
  # node_modules/onnxruntime-node/bin/napi-v6/linux/x64; which CUDA major the provider needs is
  # read from the file by the check below.
  echo "setup.sh: downloading onnxruntime's CUDA provider (NuGet, several hundred MB)…"
  if ! (cd node_modules/onnxruntime-node && ONNXRUNTIME_NODE_INSTALL=cuda12 node script/install.js); then
    echo "setup.sh: the CUDA provider could not be downloaded (above: why); run bash scripts/setup.sh --gpu again. Without it the app runs on WebGPU or the CPU." >&2
    exit 1
  fi
  node_modules/.bin/tsx cli/cuda-check.ts
fi
