"""Jobs per second of `ctc run`'s executors, and their scaling from 1 to 2 workers: the local
process pool (the default) against a Dask cluster started here (`--scheduler local:N`), measured
in the same invocation on the same jobs.

    python benchmarks/scheduler_throughput.py [--dataset NAME|DIR] [--targets BPP ...]
        [--workers N ...] [--repeat N] [--json FILE]

Bad arguments (a worker count or --repeat below 1, a target that is not a positive bpp, a
dataset that cannot be resolved, a --json whose folder does not exist) stop it with one line,
exit status 2, before anything starts.

The jobs are a real run's: the JPEG anchor on every image of --dataset (default scikit-image's
four photos) at every --target, measured with PSNR and MS-SSIM (0.1 to 0.2 s of CPU a job
here). Each executor runs them all into a fresh output folder (so nothing is skipped), as
the runner drives it (ctc.runner.LocalPool, ctc.executors.dask_cluster.DaskExecutor):

- start: entering the executor (a LocalCluster starts its scheduler and worker processes; the
  local pool starts its processes with its first jobs, inside run);
- run: from the first job submitted to the last outcome back, with its files in the folder
  (the first job of each worker process imports the harness and the codec there);
- jobs/s: jobs / (start + run), what a user waits for, and jobs / run;
- scaling: jobs/s (start + run) against the same executor's with the fewest --workers (1 by
  default); vs pool: against the local pool's with that many (1: the run's own process);
- CPU s/job: the CPU time of every process (this one and its workers, start included) per job:
  the executor's overhead, which the machine's other load does not change as much as wall time.

Every executor's rows and bitstream bytes are checked against the first one's (a benchmark of
the wrong work is no benchmark). The best of --repeat runs is kept per row. On a machine whose
cores other work also uses, the figures move with that load: the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from ctc.condition import parse_condition
from ctc.datasets import DatasetError, DatasetWarning, resolve_dataset
from ctc.executors import MAX_LOCAL_WORKERS, Executor, Scheduler
from ctc.executors.dask_cluster import DaskExecutor
from ctc.job import Job
from ctc.registry import load_codecs
from ctc.runner import LocalPool, plan, threads_used

CONDITION = {
    "name": "scheduler-throughput",
    "description": "benchmarks/scheduler_throughput.py: JPEG jobs for the executors",
    "targets_bpp": [0.25, 0.5, 0.75, 1.0, 1.5, 2.0],
    "tolerance": {"min_percent": -15, "max_percent": 15, "scope": "per_image"},
    "colour": {"matrix": "bt709", "range": "full", "bit_depth": 8},
    "metrics": {"psnr_rgb": {}, "msssim_rgb": {}},
    "anchors": ["jpeg"],
    "dataset": "skimage",
    "output": "unused",  # each executor gets a folder of its own
}
VOLATILE = {"encode_seconds", "decode_seconds", "rate_control_seconds"}


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its children that have ended: the local
    pool's and a LocalCluster's worker processes once the executor is left."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(
    make: Callable[[], Executor], jobs: list[Job], out: Path
) -> tuple[float, float, float, list[dict]]:
    """(start seconds, run seconds, CPU seconds of every process, rows sorted by bitstream) of
    one executor on `jobs`."""
    cpu = cpu_seconds()
    begin = time.perf_counter()
    with make() as executor:
        started = time.perf_counter()
        outcomes = list(executor.run(jobs))
        finished = time.perf_counter()
    cpu = cpu_seconds() - cpu
    errors = [error for _, _, error in outcomes if error]
    if errors:
        raise RuntimeError(f"{len(errors)} jobs failed, the first: {errors[0]}")
    rows = sorted((row for _, row, _ in outcomes), key=lambda row: row["bitstream"])
    for row in rows:
        row["bytes_on_disk"] = (out / row["bitstream"]).read_bytes()
    return started - begin, finished - started, cpu, rows


def same_work(a: list[dict], b: list[dict]) -> bool:
    """Whether two executors produced the same rows and files (times aside)."""
    strip = [{k: v for k, v in r.items() if k not in VOLATILE} for r in a]
    return strip == [{k: v for k, v in r.items() if k not in VOLATILE} for r in b]


MAX_REPEAT = 100
"""The most --repeat runs (a larger count is a typing error)."""
MAX_TARGET_BPP = 24.0
"""The largest --targets value: 8-bit RGB uncompressed."""


def _count(most: int) -> Callable[[str], int]:
    """An argparse type: a whole number from 1 to `most`."""

    def count(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not 1 <= value <= most:
            raise argparse.ArgumentTypeError(f"expected 1 to {most}, got {value}")
        return value

    return count


def _bpp(text: str) -> float:
    """An argparse type: a target in bits per pixel, above 0 and at most MAX_TARGET_BPP."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of bpp, got {text!r}") from None
    if not (math.isfinite(value) and 0 < value <= MAX_TARGET_BPP):
        raise argparse.ArgumentTypeError(f"expected above 0 to {MAX_TARGET_BPP:g} bpp, got {text}")
    return value


def _json_path(text: str) -> Path:
    """An argparse type: a file to write whose folder exists (checked before the work, not
    after minutes of it)."""
    path = Path(text)
    if not text or path.is_dir() or not path.absolute().parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a file in an existing folder")
    return path


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, every option checked (argparse: usage and one error line, exit 2)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dataset",
        default="skimage",
        metavar="NAME|DIR",
        help="the images to code: a dataset name, a folder or a manifest (default skimage)",
    )
    parser.add_argument(
        "--targets",
        type=_bpp,
        nargs="+",
        default=CONDITION["targets_bpp"],
        metavar="BPP",
        help="target bits per pixel of the JPEG jobs (default "
        + " ".join(f"{t:g}" for t in CONDITION["targets_bpp"])
        + ")",
    )
    parser.add_argument(
        "--workers",
        type=_count(MAX_LOCAL_WORKERS),
        nargs="+",
        default=[1, 2],
        metavar="N",
        help="worker counts to measure each executor with (default 1 2); scaling is against "
        "the fewest",
    )
    parser.add_argument(
        "--repeat",
        type=_count(MAX_REPEAT),
        default=2,
        metavar="N",
        help=f"runs of each executor and worker count, the best kept (1 to {MAX_REPEAT}, "
        "default 2)",
    )
    parser.add_argument(
        "--json", type=_json_path, metavar="FILE", help="also write the figures here (JSON)"
    )
    args = parser.parse_args(argv)
    args.workers = sorted(set(args.workers))
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    condition = parse_condition({**CONDITION, "targets_bpp": args.targets}, "benchmark")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DatasetWarning)
            dataset = resolve_dataset(args.dataset)
    except DatasetError as e:
        print(f"scheduler_throughput.py: error: --dataset: {e}".splitlines()[0], file=sys.stderr)
        raise SystemExit(2) from None
    codecs, errors = load_codecs(["jpeg"])
    if errors:
        raise SystemExit(f"jpeg: {errors['jpeg']}")
    executors = {
        "local pool": lambda out, n: LocalPool(codecs, n),
        "dask local:N": lambda out, n: DaskExecutor(Scheduler(local_workers=n), out, threads=1),
    }
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    results, reference = [], None
    with tempfile.TemporaryDirectory(prefix="ctc-throughput-") as tmp, threads_used(1):
        for name, make in executors.items():
            for workers in args.workers:
                best = None
                for attempt in range(args.repeat):
                    out = Path(tmp, f"{name.split()[0]}-{workers}-{attempt}")
                    jobs, _ = plan(condition, codecs, dataset, out)
                    start, seconds, cpu, rows = measure(lambda: make(out, workers), jobs, out)  # noqa: B023
                    reference = reference or rows
                    if not same_work(rows, reference):
                        raise SystemExit(f"{name} with {workers} workers: other rows or bytes")
                    if best is None or start + seconds < best[0] + best[1]:
                        best = (start, seconds, cpu)
                    shutil.rmtree(out)
                results.append(
                    {"executor": name, "workers": workers, "jobs": len(jobs),
                     "start_seconds": best[0], "run_seconds": best[1],
                     "cpu_seconds_per_job": best[2] / len(jobs),
                     "jobs_per_second": len(jobs) / (best[0] + best[1]),
                     "jobs_per_run_second": len(jobs) / best[1]}
                )  # fmt: skip
    fewest = args.workers[0]
    for row in results:
        one = next(
            r for r in results if r["executor"] == row["executor"] and r["workers"] == fewest
        )
        row["scaling"] = row["jobs_per_second"] / one["jobs_per_second"]
        pool = next(r for r in results if r["executor"] == "local pool" and r["workers"] == fewest)
        row["vs_local_pool_1"] = row["jobs_per_second"] / pool["jobs_per_second"]
    print(
        f"{results[0]['jobs']} jobs (JPEG, {args.dataset}, {len(args.targets)} targets, PSNR + "
        f"MS-SSIM), best of {args.repeat}; the same rows and bytes from every executor"
    )
    header = f"{'executor':<14}{'workers':>8}{'start s':>9}{'run s':>8}{'jobs/s':>8}"
    print(header + f"{'(run)':>8}{'scaling':>9}{f'vs pool {fewest}':>11}{'CPU s/job':>11}")
    for r in results:
        print(
            f"{r['executor']:<14}{r['workers']:>8}{r['start_seconds']:>9.2f}"
            f"{r['run_seconds']:>8.2f}{r['jobs_per_second']:>8.2f}"
            f"{r['jobs_per_run_second']:>8.2f}{r['scaling']:>8.2f}x{r['vs_local_pool_1']:>10.2f}x"
            f"{r['cpu_seconds_per_job']:>11.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"load_average": load, "results": results}, indent=1))


if __name__ == "__main__":
    main()
