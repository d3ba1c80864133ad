#!/bin/bash
# One device lease (docs/training.md, "Training on a lent GPU"): resume or start the training run
# of CONFIG for FIT minutes, bring back a slim checkpoint, and check GPU encode -> CPU decode.
# Needs .traindata (nic prepare-data) and .whl (the constriction wheel for the device's Python)
# carried with the call:  CONFIG=configs/mshp-n128-gpu.yaml bash configs/device_lease.sh 8
FIT=${1:-8}
CONFIG=${CONFIG:-configs/mshp-n128-gpu.yaml}
RUN=$(python3 -c "import yaml,sys,pathlib; c=pathlib.Path(sys.argv[1]); print((c.parent/yaml.safe_load(c.read_text())['output']).resolve())" "$CONFIG")
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi -L
slim() { python3 -c "from nic.train.trainer import slim_checkpoint as s; s('$RUN/checkpoint.pt', '$OUT/checkpoint-fp16.pt')" 2>/dev/null; cp "$RUN/log.csv" "$OUT/" 2>/dev/null; }
( while sleep 60; do slim; done ) &
keeper=$!
python3 -m nic.cli train "$CONFIG" --fit-minutes "$FIT" > "$OUT/train.log" 2>&1
echo "train rc=$?"
kill $keeper; wait $keeper 2>/dev/null
slim
python3 benchmarks/cross_device.py encode /tmp/xd --device cuda && tar -C /tmp -cf "$OUT/cross_device.tar" xd
tr '\r' '\n' < "$OUT/train.log" | grep -v '^train' | tail -8
tail -3 "$OUT/log.csv"; ls -la "$OUT"
