#!/usr/bin/env bash
# Installs pyg_schnet and everything it needs into ./.venv (or $VENV).
#
# torch 2.13.0 comes from the CPU wheel that this kind of machine keeps on its
# find-links path; torch-cluster (radius graphs) is source-only on PyPI, so it
# is built against that torch (--no-build-isolation, ~10 min on 2 cores), or
# taken prebuilt from ../shared/wheelhouse when that folder exists.
# PIP_FIND_LINKS is appended to, never replaced: replacing it makes pip fetch
# the 5 GB CUDA build of torch.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
if [ -d ../shared/wheelhouse ]; then
    wheelhouse=$(cd ../shared/wheelhouse && pwd)
    case " ${PIP_FIND_LINKS:-} " in
        *" $wheelhouse "*) ;;
        *) export PIP_FIND_LINKS="${PIP_FIND_LINKS:+$PIP_FIND_LINKS }$wheelhouse" ;;
    esac
fi

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
py="$VENV/bin/python"
pip=("$py" -m pip install --disable-pip-version-check -q)

"${pip[@]}" torch==2.13.0 setuptools wheel
"${pip[@]}" --no-build-isolation torch-cluster
# --no-build-isolation: setup.py builds the fused CFConv operator
# (pyg_schnet/csrc/cfconv.cpp, ~1 min) against the torch installed above;
# without a C++ compiler the package installs without it (slower, same
# numbers) and says so.
"${pip[@]}" --no-build-isolation -e ".[train,test,labels,docs]"

"$py" - <<'PY'
import shutil
import torch, torch_cluster, torch_geometric  # noqa: F401
from pyg_schnet.nn.fused import fused_available, fused_unavailable_reason
print(f"pyg_schnet set-up: torch {torch.__version__}, "
      f"torch_geometric {torch_geometric.__version__}, "
      f"torch_cluster {torch_cluster.__version__}, fused CFConv: "
      f"{'built' if fused_available() else fused_unavailable_reason()}")
if shutil.which("nvidia-smi") is None and not torch.__version__.endswith("+cpu"):
    raise SystemExit(f"expected the CPU build of torch, got {torch.__version__}: "
                     "PIP_FIND_LINKS must keep the folder with the CPU wheel")
PY
