#!/bin/bash
# One device lease (docs/training.md, "Training on a lent GPU"): time the training step at each
# precision and train CONFIG with the faster one for FIT minutes, bring back a slim checkpoint,
# compare a masked run with its separate baselines on Kodak, and check GPU encode -> CPU decode
# of the trained model.
# Carry: the config's data folder (nic prepare-data: OUTPUT/train, with OUTPUT/holdout for a
# config's holdout), .whl (constriction for the device's Python) and .kodak (the Kodak PNGs):  CONFIG=configs/masked-n128-gpu.yaml bash configs/device_lease.sh 6
FIT=${1:-8}
BUDGET=${BUDGET:---fit-minutes}  # BUDGET=--max-minutes resumes a masked run within its length
CONFIG=${CONFIG:-configs/mshp-n128-gpu.yaml}
RUN=$(python3 -c "import yaml,sys,pathlib; c=pathlib.Path(sys.argv[1]); print((c.parent/yaml.safe_load(c.read_text())['output']).resolve())" "$CONFIG")
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi -L
if [ -z "$PRECISION" ]; then  # PRECISION=tf32 or bf16 skips the timing (already measured)
  python3 benchmarks/train_speed.py "$CONFIG" --steps 40 --precisions tf32 bf16 | tee "$OUT/train_speed.txt"
  PRECISION=tf32  # bf16 only where it is clearly faster
  python3 - "$OUT/train_speed.txt" <<'PY' && PRECISION=bf16
import re, sys
t = dict(re.findall(r"(\w+):\s+([\d.]+) ms/step", open(sys.argv[1]).read()))
sys.exit(0 if float(t["tf32"]) / float(t["bf16"]) >= 1.25 else 1)
PY
fi
echo "precision: $PRECISION"
slim() { python3 -c "from nic.train.trainer import slim_checkpoint as s; s('$RUN/checkpoint.pt', '$OUT/checkpoint-fp16.pt')" 2>/dev/null; cp "$RUN/log.csv" "$RUN/holdout.csv" "$OUT/" 2>/dev/null; }
( while sleep 60; do slim; done ) &
keeper=$!
python3 -m nic.cli train "$CONFIG" "$BUDGET" "$FIT" --precision "$PRECISION" > "$OUT/train.log" 2>&1
echo "train rc=$?"
kill $keeper; wait $keeper 2>/dev/null
slim
if grep -q "baselines: true" "$CONFIG"; then
  python3 benchmarks/masked_vs_separate.py "$RUN/checkpoint.pt" --images .kodak \
    --reference nic-mshp-n128-v2 --json "$OUT/masked_vs_separate.json" 2>&1 | grep -v "images:" | tee "$OUT/masked_vs_separate.txt"
fi
# GPU encode -> CPU decode with the model just trained, exported here as NAME (float16) and brought
# back in 15 MiB parts: cat model.pt.part* > M.pt; python benchmarks/cross_device.py decode xd --model M.pt
python3 -m nic.cli export "$RUN/checkpoint.pt" /tmp/run-model.pt --name "${NAME:-$(basename "$RUN")}" --dtype float16
split -b 15m -d /tmp/run-model.pt "$OUT/model.pt.part"
timeout ${XD_SECONDS:-120} python3 benchmarks/cross_device.py encode /tmp/xd --device "${XD_DEVICE:-cuda}" \
  --images .kodak --limit 4 --model /tmp/run-model.pt; tar -C /tmp -cf "$OUT/cross_device.tar" xd
tr '\r' '\n' < "$OUT/train.log" | grep -v '^train' | tail -8
tail -3 "$OUT/log.csv"; ls -la "$OUT"
