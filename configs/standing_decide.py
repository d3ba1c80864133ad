"""Decide on a chunk of the standing training job (docs/training.md, "The standing training job"):
does the model it brought back code the FVC conditions better than the zoo's default?

    python configs/standing_decide.py FILES_DIR [--dataset kodak] [--jobs 2] [--promote]

FILES_DIR holds what configs/standing_job.sh left in $OUT: model.pt.part* (the exported model,
float16, in 15 MiB parts), chunk.csv (its row of benchmarks/results/training-chunks.csv, without
an outcome), log.csv, holdout.csv and train.log, and cross_device.tar when the GPU encode check
ran.

1. Joins the parts into ctc-results/standing/NAME.pt and loads it (its name must be new to the zoo).
2. Runs `ctc run fvc --codec nic --dataset DATASET` twice: with the zoo as it is, into
   ctc-results/standing/DEFAULT (kept, so later chunks against the same default reuse it), and
   with a scratch copy of the nic package whose zoo lists the new model first, into
   ctc-results/standing/NAME. (`ctc run` cannot select the nic codec's model itself: its --codec
   takes registered names only, where `ctc complexity` takes nic:MODEL.) Each store's codec
   version names the model it ran, which is checked.
3. BD-rate of the new model against the default: RGB PSNR, pchip, ctc.bdrate.bd_dataset over
   FVC's low (0.06-0.5 bpp), high (0.25-1.5 bpp) and all targets, per-image mean and average
   curve. The new model is better when both aggregations over all targets are below 0.
4. Decodes the streams of cross_device.tar, encoded on the GPU, on this CPU with the new model
   (benchmarks/cross_device.py decode): its latents must be identical. Prints the holdout loss
   at the chunk's first and last evaluation (holdout.csv), to watch for overfitting.
5. Writes the chunk's row, with the BD-rates and the outcome, into
   benchmarks/results/training-chunks.csv (replacing an earlier row of the same model).
6. With --promote, and only when the new model is better and all its device-made streams decode
   to the same latents here, makes it the zoo's default: its file into nic/zoo/, first in
   models.json with the next index, the replaced default's entry and file removed, and the
   standing config's `init:` set to it. The golden streams and the zoo table of
   docs/training.md are then left to update by hand.

Exit status 0 when decided (better or not), 1 on a failure (one line on stderr).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "nic" / "zoo"
CHUNKS = REPO / "benchmarks" / "results" / "training-chunks.csv"
STANDING_CONFIG = REPO / "configs" / "standing-masked-n128.yaml"
RESULTS = REPO / "ctc-results" / "standing"
RANGES = ("low", "high", "all")


def join_parts(folder: Path, stem: str, dest: Path) -> Path:
    """Concatenate folder/stem.part00, part01, ... into dest."""
    parts = sorted(folder.glob(f"{stem}.part*"))
    if not parts:
        raise ValueError(f"{folder}: no {stem}.part* files (did the device job export a model?)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    return dest


def ctc_run(out: Path, dataset: str, jobs: int, package: Path | None = None) -> None:
    """`ctc run fvc --codec nic` into `out`; with `package`, the nic package found there."""
    env, cwd = dict(os.environ), REPO
    if package is not None:  # ahead of the installed nic; and not run from the repository,
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package), env.get("PYTHONPATH")]))
        cwd = package  # whose folder `python -m` would put first on the path
    command = [sys.executable, "-m", "ctc.cli", "run", "fvc", "--codec", "nic"]
    command += ["--dataset", dataset, "--out", str(out), "-j", str(jobs), "--no-progress"]
    print("$", " ".join(command), f"(nic from {package})" if package else "", flush=True)
    subprocess.run(command, env=env, cwd=cwd, check=False)  # failed jobs are reported below


def scratch_package(model_file: Path, name: str, description: str, folder: Path) -> Path:
    """A copy of the nic package in `folder` whose zoo lists the model file first (linked, not
    copied, with the zoo's own files)."""
    from nic import zoo

    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(
        REPO / "nic", folder / "nic", ignore=shutil.ignore_patterns("__pycache__", "*.pt")
    )
    for entry in zoo.entries():
        (folder / "nic" / "zoo" / entry.file).symlink_to(entry.path)
    (folder / "nic" / "zoo" / f"{name}.pt").symlink_to(model_file.resolve())
    registry = json.loads(zoo.REGISTRY.read_text())
    registry["models"].insert(0, _zoo_entry(registry, name, model_file, description))
    (folder / "nic" / "zoo" / "models.json").write_text(json.dumps(registry, indent=2) + "\n")
    return folder


def _zoo_entry(registry: dict, name: str, model_file: Path, description: str) -> dict:
    return {
        "name": name,
        "index": 1 + max(m["index"] for m in registry["models"]),
        "file": f"{name}.pt",
        "sha256": hashlib.sha256(model_file.read_bytes()).hexdigest(),
        "description": description,
    }


def psnr_curves(folder: Path, model_name: str) -> dict:
    """Per-image RGB PSNR curves of the nic rows of a `ctc run` folder, checking that they are
    the model's."""
    from ctc.report.data import METRICS, curves, load

    data = load(folder)
    version = data.versions.get("nic", "")
    if f"model {model_name} " not in version:
        raise ValueError(f"{folder}: nic ran as {version!r}, not with {model_name}")
    return curves(data.rows["nic"], next(m for m in METRICS if m.column == "psnr_rgb"))


def bd_rates(anchor: dict, test: dict) -> dict[str, tuple[float, float]]:
    """(per-image mean, average curve) BD-rate in % of test against anchor, per FVC range, over
    the images both have."""
    from ctc.bdrate import LowOverlapWarning, bd_dataset

    images = sorted(set(anchor) & set(test))
    if not images:
        raise ValueError("no image has results for both models")
    out = {}
    for bpp_range in RANGES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LowOverlapWarning)
            r = bd_dataset(
                {i: anchor[i] for i in images}, {i: test[i] for i in images}, bpp_range=bpp_range
            )
        out[bpp_range] = (r.per_image_mean, r.average_curve.value)
    return out


def cross_device(files: Path, model_file: Path, work: Path) -> str:
    """Decode the GPU-made streams on this CPU; the summary line, or why it did not run."""
    tar = files / "cross_device.tar"
    if not tar.exists():
        return "no GPU-made streams (cross_device.tar) to decode"
    shutil.rmtree(work / "xd", ignore_errors=True)
    with tarfile.open(tar) as t:
        t.extractall(work, filter="data")
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "cross_device.py"), "decode", str(work / "xd"),
         "--device", "cpu", "--model", str(model_file)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    print(result.stdout, end="")
    lines = result.stdout.strip().splitlines()
    return lines[-1] if result.returncode == 0 and lines else f"decode failed: {result.stderr}"


def holdout_trend(files: Path) -> str:
    """The holdout loss (mean over the rate points) at the chunk's first and last evaluation."""
    path = files / "holdout.csv"
    if not path.exists():
        return ""
    losses: dict[int, list[float]] = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            losses.setdefault(int(r["step"]), []).append(float(r["loss"]))
    first, last = min(losses), max(losses)
    return (
        f"holdout loss {sum(losses[first]) / len(losses[first]):.4f} at step {first}, "
        f"{sum(losses[last]) / len(losses[last]):.4f} at step {last}"
    )


def record(row: dict) -> None:
    """Write `row` into the chunk log, replacing an earlier row of the same model."""
    with open(CHUNKS, newline="") as f:
        reader = csv.DictReader(f)
        columns, rows = reader.fieldnames, [r for r in reader if r["model"] != row["model"]]
    with open(CHUNKS, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows([*rows, {c: row.get(c, "") for c in columns}])


def promote(model_file: Path, name: str, description: str, default: str) -> None:
    """Make the model the zoo's default in place of `default` (whose entry and file go)."""
    registry = json.loads((ZOO / "models.json").read_text())
    shutil.copyfile(model_file, ZOO / f"{name}.pt")
    registry["models"].insert(0, _zoo_entry(registry, name, ZOO / f"{name}.pt", description))
    replaced = next(m for m in registry["models"] if m["name"] == default)
    registry["models"].remove(replaced)
    (ZOO / "models.json").write_text(json.dumps(registry, indent=2) + "\n")
    (ZOO / replaced["file"]).unlink()
    text = STANDING_CONFIG.read_text()
    STANDING_CONFIG.write_text(re.sub(r"(?m)^init: .*$", f"init: {name}", text, count=1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", type=Path, help="the files the device job brought back")
    parser.add_argument("--dataset", default="kodak", help="ctc dataset name or folder (kodak)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="ctc worker processes (2)")
    parser.add_argument("--promote", action="store_true", help="replace the default if better")
    args = parser.parse_args()
    try:
        return decide(args)
    except (ValueError, OSError) as e:
        print(f"standing_decide: error: {e}", file=sys.stderr)
        return 1


def decide(args: argparse.Namespace) -> int:
    from nic import zoo
    from nic.model_file import load_model_file

    with open(args.files / "chunk.csv", newline="") as f:
        row = next(csv.DictReader(f))
    name, default = row["model"], zoo.default_name()
    if zoo.is_registered(name):
        raise ValueError(f"{name} is already in the zoo; export the chunk under a new name")
    work = RESULTS / name
    model_file = join_parts(args.files, "model.pt", RESULTS / f"{name}.pt")
    model = load_model_file(model_file)
    if model.name != name:
        raise ValueError(f"{model_file} is {model.name}, but chunk.csv names {name}")
    first = next(e for e in zoo.entries() if e.name == default).description.split("; ")[0]
    description = (
        f"{first}; standing job: {row['steps']} steps on {row['device']} from {row['init']}"
    )
    dataset = str(Path(args.dataset).resolve()) if Path(args.dataset).is_dir() else args.dataset
    ctc_run(RESULTS / default, dataset, args.jobs)
    package = scratch_package(model_file, name, description, work / "package")
    ctc_run(work / "fvc", dataset, args.jobs, package)
    try:
        bd = bd_rates(psnr_curves(RESULTS / default, default), psnr_curves(work / "fvc", name))
    except ValueError as e:  # curves that give no BD-rate (too few distinct points, no overlap)
        bd, why = {}, str(e)
    if bd:
        print(f"{name} against {default}, BD-rate (RGB PSNR), per-image mean / average curve:")
    for bpp_range, (mean, curve) in bd.items():
        print(f"  {bpp_range:>4}: {mean:+.2f} % / {curve:+.2f} %")
    better = bool(bd) and bd["all"][0] < 0 and bd["all"][1] < 0
    xd = cross_device(args.files, model_file, work)
    counts = re.search(r"latents identical for (\d+) of (\d+)", xd)
    portable = bool(counts) and counts[1] == counts[2]
    trend = holdout_trend(args.files)
    print(trend)
    if not bd:
        outcome = f"no BD-rate ({why}): kept out of the zoo"
    elif not better:
        outcome = "not better: kept out of the zoo"
    elif not portable:
        outcome = "better, but kept out: no proof that its device-made streams decode here"
    elif args.promote:
        outcome = f"replaced {default} as the zoo default"
    else:
        outcome = "better: not yet promoted (--promote)"
    row.update(
        bd_reference=default,
        bd_measure=f"ctc run fvc, {Path(args.dataset).name}, RGB PSNR, all targets",
        bd_rate_per_image_pct=f"{bd['all'][0]:.2f}" if bd else "",
        bd_rate_average_curve_pct=f"{bd['all'][1]:.2f}" if bd else "",
        outcome=outcome,
        notes="; ".join(
            filter(None, [row.get("notes"), trend, f"device encode, CPU decode: {xd}"])
        ),
    )
    record(row)
    if better and portable and args.promote:
        promote(model_file, name, description, default)
    print(f"{name}: {outcome} ({CHUNKS.relative_to(REPO)} updated)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
