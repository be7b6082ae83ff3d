#!/usr/bin/env bash
# Install torch into the active Python without pulling a multi-GB CUDA build onto a CPU-only machine.
#   - a machine with an NVIDIA GPU: the default (CUDA) wheel from PyPI;
#   - a CPU-only machine with a local CPU wheel (pip's find-links, as on our build machines): that wheel, offline;
#   - any other CPU-only machine: the CPU wheel from PyTorch's own CPU index.
# Usage: scripts/install_torch.sh PYTHON  (TORCH_VERSION overrides the pinned version)
set -euo pipefail
py=${1:-python3}
ver=${TORCH_VERSION:-2.13.0}
if "$py" -c "import torch" 2>/dev/null; then
  echo "torch $("$py" -c 'import torch; print(torch.__version__)') already installed"
  exit 0
fi
if command -v nvidia-smi >/dev/null 2>&1; then
  "$py" -m pip install "torch==$ver"
elif "$py" -m pip install --dry-run --quiet --no-deps --no-index "torch==$ver" >/dev/null 2>&1; then
  "$py" -m pip install "torch==$ver"
else
  "$py" -m pip install "torch==$ver" --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple
fi
