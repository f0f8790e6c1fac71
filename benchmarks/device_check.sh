#!/usr/bin/env bash
# Times the paper's workloads on a CUDA device and prints the extrapolated time of the full
# paper (issue 18 item 5). About 5–8 minutes on one GPU. Run from the repository root on the
# device machine (the `device` tool), with the project's dependencies importable:
#   bash benchmarks/device_check.sh [--updates 2000]
# Results also go to $OUT/device_check.json when $OUT is set.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
export PYTHONPATH="$(pwd)/src${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
python3 benchmarks/device_check.py --device cuda ${OUT:+--out "$OUT/device_check.json"} "$@"
