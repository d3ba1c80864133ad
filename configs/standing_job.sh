#!/bin/bash
# The standing training job, one GPU call (docs/training.md, "The standing training job"): train the
# model named by CONFIG's `init` on for MINUTES (default 7; --fit-minutes ends the learning-rate
# decay with them), export it as NAME (default: init's -vN plus one; float16) and leave in $OUT:
# model.pt.part* (15 MiB parts), log.csv, holdout.csv, train.log, chunk.csv (the chunk's row of
# benchmarks/results/training-chunks.csv) and cross_device.tar (the new model's streams of
# XD_IMAGES, encoded on XD_DEVICE). Until the export, a slim checkpoint refreshed every minute
# (checkpoint-fp16.pt.part*) stands in for the model. Then, on the CPU machine:
#   python configs/standing_decide.py FILES_DIR [--promote]
# A run folder carried with a slim checkpoint in it resumes with --max-minutes instead.
# Carry .traindata (nic prepare-data), .whl (constriction for the device's Python) and
# .kodak-xd (two Kodak PNGs); keep the zoo's other model out of the tree for the call.
#   bash configs/standing_job.sh [MINUTES]      environment: CONFIG NAME PRECISION XD_DEVICE XD_IMAGES
MINUTES=${1:-7}
CONFIG=${CONFIG:-configs/standing-masked-n128.yaml}
PRECISION=${PRECISION:-tf32}  # bf16 measured x1.02 for the masked N=128 step on an H200
XD_DEVICE=${XD_DEVICE:-cuda}
XD_IMAGES=${XD_IMAGES:-.kodak-xd}
OUT=${OUT:?set OUT to the folder that comes back}
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
if ! python3 -c "import constriction" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
    .whl/*.whl || exit 1
fi
read -r RUN INIT < <(python3 -c "from nic.train.trainer import TrainConfig as C; import sys
c = C.from_yaml(sys.argv[1]); print(c.output, c.init or '-')" "$CONFIG") || exit 1
[[ $INIT =~ ^(.+-v)([0-9]+)$ ]] && NAME=${NAME:-${BASH_REMATCH[1]}$((BASH_REMATCH[2] + 1))}
[ -n "${NAME:-}" ] || { echo "set NAME: the new model's name"; exit 1; }
BUDGET=--fit-minutes START="0 0"
if [ -f "$RUN/checkpoint.pt" ]; then
  BUDGET=--max-minutes
  START=$(python3 -c "from nic.train.checkpoint import load_checkpoint as l; import sys
c = l(sys.argv[1]); print(c['step'], c['wall_time_s'])" "$RUN/checkpoint.pt") || exit 1
fi
echo "standing job: $CONFIG from $INIT (step ${START% *}), $BUDGET $MINUTES, $PRECISION, as $NAME"
command -v nvidia-smi >/dev/null && nvidia-smi -L

slim() {  # replace the parts in $OUT one file at a time
  python3 -c "from nic.train.trainer import slim_checkpoint as s; import sys; s(*sys.argv[1:])" \
    "$RUN/checkpoint.pt" /tmp/standing-slim.pt 2>/dev/null || return
  rm -rf /tmp/standing-parts && mkdir /tmp/standing-parts
  split -b 15m -d /tmp/standing-slim.pt /tmp/standing-parts/checkpoint-fp16.pt.part
  mv -f /tmp/standing-parts/* "$OUT"/
  cp "$RUN/log.csv" "$RUN/holdout.csv" "$OUT"/ 2>/dev/null
}
( while sleep 60; do slim; done ) &
keeper=$!
python3 -m nic.cli train "$CONFIG" "$BUDGET" "$MINUTES" --precision "$PRECISION" >"$OUT/train.log" 2>&1
rc=$?
pkill -P $keeper  # its sleep or slim copy first, so that no copy lands after the last one
kill $keeper 2>/dev/null
wait $keeper 2>/dev/null
slim
tr '\r' '\n' <"$OUT/train.log" | grep -v '^train' | tail -5
echo "train rc=$rc"
[ $rc -eq 0 ] || exit $rc

python3 -m nic.cli export "$RUN/checkpoint.pt" /tmp/standing-model.pt --name "$NAME" \
  --dtype float16 --data-description "nic prepare-data crops of a folder of training photos \
(lossless, full resolution); standing job from $INIT, $BUDGET $MINUTES" || exit 1
split -b 15m -d /tmp/standing-model.pt "$OUT/model.pt.part"
rm -f "$OUT"/checkpoint-fp16.pt.part*  # the model stands for the finished chunk (8 files come back)

python3 - "$RUN/checkpoint.pt" "$OUT/chunk.csv" "$NAME" "$INIT" "$CONFIG" "$PRECISION" "$START" \
  "$BUDGET $MINUTES" <<'PY' || exit 1
import csv, datetime, sys
from nic.train.checkpoint import load_checkpoint
path, out, name, init, config, precision, start, budget = sys.argv[1:]
ckpt, (step, wall) = load_checkpoint(path), start.split()
settings = ckpt["train_config"]
row = {
    "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat(), "model": name,
    "init": "" if init == "-" else init, "config": config, "device": ckpt["hardware"][-1]["hardware"],
    "precision": precision, "steps": ckpt["step"] - int(step), "batch": settings["batch"],
    "patch": settings["patch"], "wall_time_s": f"{ckpt['wall_time_s'] - float(wall):.1f}",
    "notes": f"standing job, {budget}, lr {settings['lr']:g} to {settings['lr_final']:g}"
    + (f", resumed at step {step}" if int(step) else ""),
}
with open(out, "w", newline="") as f:
    writer = csv.DictWriter(f, list(row), lineterminator="\n")
    writer.writeheader()
    writer.writerow(row)
PY

if [ -d "$XD_IMAGES" ]; then  # GPU encode -> CPU decode: the decision step decodes these
  rm -rf /tmp/xd
  timeout 120 python3 benchmarks/cross_device.py encode /tmp/xd --device "$XD_DEVICE" \
    --images "$XD_IMAGES" --limit 4 --model /tmp/standing-model.pt &&
    tar -C /tmp -cf "$OUT/cross_device.tar" xd
else
  echo "no $XD_IMAGES: GPU encode -> CPU decode check skipped"
fi
tail -2 "$OUT/log.csv"
ls -la "$OUT"
