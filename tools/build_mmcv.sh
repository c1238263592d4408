#!/usr/bin/env bash
# Build mmcv 2.1.0 with its compiled ops against the installed torch (2.14.1), as a wheel in OUT_DIR.
#
#   tools/build_mmcv.sh OUT_DIR [PYTHON]        CPU ops (about 40 minutes on 2 cores)
#   FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="9.0" tools/build_mmcv.sh OUT_DIR   CUDA ops (needs nvcc)
#
# Why a patch: torch 2.14's C++ headers require C++20, and mmcv 2.1.0's setup.py compiles its ops
# with -std=c++14 / -std=c++17, which fail on those headers. Nobody publishes an mmcv with ops for
# torch 2.14, so `make setup` uses a prebuilt wheel where ../shared/wheels has one and this script
# otherwise; the det/seg image runs it with FORCE_CUDA=1.
set -euo pipefail
out=${1:?usage: tools/build_mmcv.sh OUT_DIR [PYTHON]}
py=${2:-python}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$py" -c "import torch; assert torch.__version__.startswith('2.14'), torch.__version__" \
  || { echo "build_mmcv: $py must have torch 2.14.x installed" >&2; exit 2; }
"$py" -m pip install -q wheel ninja 'setuptools<70'   # mmcv's setup.py imports pkg_resources
"$py" -m pip download -q --no-deps --no-build-isolation --no-binary :all: mmcv==2.1.0 -d "$work"
tar xzf "$work"/mmcv-2.1.0.tar.gz -C "$work"
sed -i 's/-std=c++14/-std=c++20/g; s/-std=c++17/-std=c++20/g' "$work"/mmcv-2.1.0/setup.py
grep -q -- '-std=c++20' "$work"/mmcv-2.1.0/setup.py || { echo "build_mmcv: setup.py has no -std flag to patch" >&2; exit 2; }
echo "build_mmcv: compiling mmcv 2.1.0 ops (FORCE_CUDA=${FORCE_CUDA:-0}); this takes a while" >&2
(cd "$work"/mmcv-2.1.0 && MMCV_WITH_OPS=1 FORCE_CUDA=${FORCE_CUDA:-0} MAX_JOBS=${MAX_JOBS:-$(nproc)} \
  "$py" -m pip wheel -q --no-build-isolation --no-deps . -w "$out")
ls "$out"/mmcv-2.1.0-*.whl
