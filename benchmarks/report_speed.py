"""Time and peak memory of `ctc report` and `ctc complexity`: before and after the complexity
cache and the report's bounded measurement picture.

    python benchmarks/report_speed.py [--dataset NAME|DIR] [--images N] [--codecs nic,jpeg]
        [--anchor jpeg] [--baseline-size WxH] [--old-ctc DIR] [--json FILE]

It makes a small finished run of its own (`ctc run` of a one-metric, three-target condition on
the first --images images of --dataset, default 3 of scikit-image's photos), then runs, each as
a child process whose wall time, CPU time and peak resident set (os.wait4's rusage, the whole
child) are recorded:

- with --old-ctc DIR (a folder holding an older `ctc` package, e.g. made with
  `git archive REV ctc | tar -x -C DIR`): `ctc report` by that code, which measured every
  codec's complexity on a --baseline-size picture each time (3840x2160 was its default);
- `ctc report` by this ctc in the old behaviour: every codec measured on a --baseline-size
  picture (default 3840x2160; a smaller one runs in minutes), nothing cached
  (`--complexity-size WxH --no-cache`);
- cold: `ctc report` with an empty complexity cache: each codec measured once, on a picture of
  the run's largest image size, and cached;
- warm: the same `ctc report` again: every measurement from the cache;
- `ctc complexity CODEC --size WxH` of the first codec: by --old-ctc, by this ctc without the
  cache, then cold and warm.

Ratios are against the first row of each group (the old code where --old-ctc is given),
measured in the same invocation. Everything runs in a temporary folder (the cache too:
$CTC_COMPLEXITY_CACHE), which is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import yaml

from ctc.datasets import DatasetWarning, resolve_dataset

CONDITION = {
    "name": "report-speed",
    "description": "benchmarks/report_speed.py: a small run to report",
    "targets_bpp": [0.25, 0.5, 1.0],
    "tolerance": {"min_percent": -15, "max_percent": 15, "scope": "per_image"},
    "colour": {"matrix": "bt709", "range": "full", "bit_depth": 8},
    "metrics": {"psnr_rgb": {}},
    "anchors": ["jpeg"],
    "dataset": "skimage",
}


def run_child(command: list[str], env: dict[str, str], log: Path) -> dict[str, float]:
    """Run `command`; returns its wall seconds, CPU seconds (user + system) and peak resident
    set (MB, 10^6 bytes), all of the child and its waited-for children (os.wait4). Raises
    RuntimeError (with the log's tail) when it fails."""
    with open(log, "wb") as out:
        start = time.perf_counter()
        child = subprocess.Popen(  # in `log`'s folder: no checkout's ctc/ shadows --old-ctc
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent
        )
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(command)} failed ({child.returncode}):\n{tail}")
    return {
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_mb": usage.ru_maxrss * 1024 / 1e6,
    }


def ctc_command(old_ctc: Path | None = None) -> tuple[list[str], dict[str, str]]:
    """The `ctc` command line (this checkout's, or the package in old_ctc) and its env."""
    env = dict(os.environ)
    if old_ctc is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(old_ctc), env.get("PYTHONPATH", "")])
    code = "import sys; from ctc.cli import main; sys.exit(main())"
    return [sys.executable, "-c", code], env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="skimage", help="NAME or folder (default skimage)")
    parser.add_argument("--images", type=int, default=3, help="images of it to run (default 3)")
    parser.add_argument("--codecs", default="nic,jpeg", help="codecs to run (default nic,jpeg)")
    parser.add_argument("--anchor", default="jpeg", help="the report's anchor (default jpeg)")
    parser.add_argument(
        "--baseline-size",
        default="3840x2160",
        metavar="WxH",
        help="picture of the baseline's measurement (default 3840x2160)",
    )
    parser.add_argument(
        "--old-ctc",
        type=Path,
        metavar="DIR",
        help="a folder holding an older ctc package to run the baseline with",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the numbers here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="report-speed-"))
    try:
        rows = benchmark(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


def benchmark(args: argparse.Namespace, work: Path) -> list[dict]:
    with warnings.catch_warnings():  # a folder's other files (a README) are skipped: fine here
        warnings.simplefilter("ignore", DatasetWarning)
        dataset = resolve_dataset(args.dataset)
    images = work / "images"
    images.mkdir()
    for image in dataset.images[: args.images]:
        shutil.copyfile(image.path, images / image.path.name)
    condition = work / "report-speed.yaml"
    run = work / "run"
    spec = {**CONDITION, "anchors": [args.anchor], "output": str(run)}
    condition.write_text(yaml.safe_dump(spec))
    cache = work / "cache"
    ctc, env = ctc_command()
    env["CTC_COMPLEXITY_CACHE"] = str(cache)
    codecs = args.codecs.split(",")
    print(f"run: {args.images} images of {dataset.name}, codecs {args.codecs}", flush=True)
    made = run_child(
        [*ctc, "run", str(condition), "--codec", args.codecs, "--dataset", str(images)]
        + ["--out", str(run), "--no-progress"],
        env,
        work / "run.log",
    )
    print(f"  ctc run (not compared): {_line(made)}", flush=True)
    size = args.baseline_size
    report = ["report", str(run), "--anchor", args.anchor]
    complexity = ["complexity", codecs[0], "--size", size, "--json"]
    old = None
    if args.old_ctc:
        old_ctc, old_env = ctc_command(args.old_ctc.resolve())
        old = [
            (f"report, before (--old-ctc): measured at {size}, no cache",
             [*old_ctc, *report, "--complexity-size", size, "-o", str(work / "old.xlsx")],
             old_env),
            (f"complexity {codecs[0]} {size}, before (--old-ctc)", [*old_ctc, *complexity],
             old_env),
        ]  # fmt: skip
    cases = [
        *(old[:1] if old else []),
        (f"report, this ctc, the old behaviour: measured at {size}, no cache",
         [*ctc, *report, "--complexity-size", size, "--no-cache", "-o", str(work / "base.xlsx")],
         env),
        ("report, after: cold cache (measured at the run's largest image size)",
         [*ctc, *report, "-o", str(work / "cold.xlsx")], env),
        ("report, after: warm cache", [*ctc, *report, "-o", str(work / "warm.xlsx")], env),
        *(old[1:] if old else []),
        (f"complexity {codecs[0]} {size}, this ctc, no cache", [*ctc, *complexity, "--no-cache"],
         env),
        (f"complexity {codecs[0]} {size}, cold cache", [*ctc, *complexity], env),
        (f"complexity {codecs[0]} {size}, warm cache", [*ctc, *complexity], env),
    ]  # fmt: skip
    rows = []
    for number, (label, command, environment) in enumerate(cases):
        if "cold cache" in label:
            shutil.rmtree(cache, ignore_errors=True)
        measured = run_child(command, environment, work / f"case-{number}.log")
        rows.append({"case": label, **measured})
        print(f"  {label}: {_line(measured)}", flush=True)
    print()
    print(f"{'case':68} {'wall s':>7} {'CPU s':>7} {'peak MB':>8} {'wall':>7} {'CPU':>7} "
          f"{'memory':>7}")  # fmt: skip
    for group in ("report", "complexity"):
        members = [r for r in rows if r["case"].startswith(group)]
        base = members[0]
        for row in members:
            for name, column in (("wall", "seconds"), ("cpu", "cpu_seconds"),
                                 ("memory", "peak_mb")):  # fmt: skip
                row[f"{name}_ratio"] = row[column] / base[column]
            print(f"{row['case']:68} {row['seconds']:7.1f} {row['cpu_seconds']:7.1f} "
                  f"{row['peak_mb']:8.0f} {row['wall_ratio']:6.3f}x {row['cpu_ratio']:6.3f}x "
                  f"{row['memory_ratio']:6.3f}x")  # fmt: skip
    print("ratios: against the first row of each group, measured in this invocation; CPU s is")
    print("the child's user + system time (less disturbed than wall time by other work on the")
    print("machine); peak MB its largest resident set")
    return rows


def _line(measured: dict[str, float]) -> str:
    return (
        f"{measured['seconds']:.1f} s wall, {measured['cpu_seconds']:.1f} s CPU, "
        f"{measured['peak_mb']:.0f} MB peak"
    )


if __name__ == "__main__":
    main()
