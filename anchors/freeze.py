"""Freeze an anchor's results on a dataset: fixed-QP rows and per-image rate-matched rows.

    python -m anchors.freeze --codec bpg --dataset kodak --out anchors/results/kodak

Several processes may run the same freeze at once: each image is claimed by a lock file, so
they share the images, and the last to finish writes the complete CSV.

For every image: the fixed QPs (default 12 17 22 27 32 37 42 47) and every target of the given
conditions (default fvc and jpeg_ai_cfe). Target rows are made by the harness's own job code
(ctc.job.execute, hence ctc.ratecontrol.match_rate and ctc.metrics), so they are the rows that
`ctc run CONDITION --codec NAME` computes; the codec is wrapped in a cache of (image, QP)
encodes on disk, so that the 14 targets and the fixed QPs share encodes and an interrupted run
resumes without re-encoding. Timings are those of the real encodes: a row's encode_seconds is
the measured time of the chosen QP's encode and rate_control_seconds the sum over the QPs the
search tried (the harness would have encoded each of them once).

Writes OUT/NAME.csv (fixed-QP rows first, target empty, rate_control "fixed") and updates
OUT/manifest.json (dataset pixel checksums, anchor version, conditions and their hashes).
Fixed-QP rows use the metric conventions of the first condition (fvc: BT.709, 8 bit).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import platform
import re
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from ctc import metrics
from ctc.codec import Codec
from ctc.condition import Condition, load_condition
from ctc.datasets import Dataset, resolve_dataset
from ctc.job import Job, execute
from ctc.registry import load_codec
from ctc.store import COLUMN_NAMES
from ctc.store import FILENAME as STORE_FILE

FIXED_QPS = (12, 17, 22, 27, 32, 37, 42, 47)
CONDITIONS = ("fvc", "jpeg_ai_cfe")
CSV_COLUMNS = tuple(c for c in COLUMN_NAMES if c not in ("bitstream", "run_id", "finished_at"))
MANIFEST = "manifest.json"


def default_cache() -> Path:
    """Where encodes are cached: $CTC_ANCHOR_CACHE, else the user's cache folder."""
    if os.environ.get("CTC_ANCHOR_CACHE"):
        return Path(os.environ["CTC_ANCHOR_CACHE"])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "nic-ctc" / "anchor-encodes"


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its child processes that ended."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CachedEncodes:
    """A codec whose encodes are kept on disk by (codec version, image pixels, QP).

    Same name, knob and version as the wrapped codec, so that ctc's rate control and job code
    treat it as the codec itself; `requested` lists the QPs asked for since the last reset.
    Each encode's wall time and CPU time (this process's and its finished child processes',
    user + system: an external encoder's) are kept; `seconds` holds the CPU time with
    cpu_time=True, which re-encodes cached entries that lack it, else the wall time.
    """

    def __init__(self, codec: Codec, folder: Path, cpu_time: bool = False) -> None:
        self.codec = codec
        self.cpu_time = cpu_time
        self.name, self.knob = codec.name, codec.knob
        self.extension = getattr(codec, "extension", "bin")
        ver = codec.version()
        self.folder = folder / f"{codec.name}-{hashlib.sha256(ver.encode()).hexdigest()[:12]}"
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "version.txt").write_text(ver + "\n")
        self.seconds: dict[tuple[str, int], float] = {}
        self.requested: list[int] = []
        self.encodes = 0

    def version(self) -> str:
        return self.codec.version()

    def _paths(self, digest: str, qp: int) -> tuple[Path, Path]:
        base = self.folder / digest[:16] / f"qp{qp:02d}"
        return base.with_suffix(".bin"), base.with_suffix(".json")

    def encode(self, image: np.ndarray, knob_value: float) -> bytes:
        qp = int(round(knob_value))
        digest = hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()
        self.requested.append(qp)
        data_path, meta_path = self._paths(digest, qp)
        key = "cpu_seconds" if self.cpu_time else "encode_seconds"
        if data_path.is_file() and meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            data = data_path.read_bytes()
            if len(data) == meta["bytes"] and key in meta:
                self.seconds[(digest, qp)] = meta[key]
                return data
        start, cpu = time.perf_counter(), _cpu_seconds()
        data = self.codec.encode(image, qp)
        meta = {"bytes": len(data), "encode_seconds": time.perf_counter() - start,
                "cpu_seconds": _cpu_seconds() - cpu}  # fmt: skip
        self.encodes += 1
        data_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = data_path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, data_path)
        meta_path.write_text(json.dumps(meta))
        self.seconds[(digest, qp)] = meta[key]
        return data

    def decode(self, data: bytes) -> np.ndarray:
        return self.codec.decode(data)


def _fixed_row(
    cached: CachedEncodes, image: np.ndarray, name: str, digest: str, qp: int, cond: Condition
) -> dict[str, Any]:
    """One fixed-QP row, measured as ctc.job measures a target row."""
    height, width = image.shape[:2]
    data = cached.encode(image, qp)
    pixel_digest = hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()
    start = time.perf_counter()
    decoded = np.asarray(cached.decode(data))
    decode_seconds = time.perf_counter() - start
    seconds = cached.seconds[(pixel_digest, qp)]
    return {
        "codec": cached.name, "codec_version": cached.version(), "image": name,
        "image_sha256": digest, "target_bpp": None, "condition_hash": cond.hash,
        "condition": "fixed_qp", "width": width, "height": height,
        "knob_name": cached.knob.name, "knob_value": float(qp), "rate_control": "fixed",
        "n_encodes": 1, "bytes": len(data), "bpp": 8.0 * len(data) / (width * height),
        "deviation_percent": None, "in_tolerance": None,
        **metrics.compute(image, decoded, cond.metric_config),
        "encode_seconds": seconds, "decode_seconds": decode_seconds,
        "rate_control_seconds": seconds,
    }  # fmt: skip


def image_rows(
    cached: CachedEncodes,
    image_path: Path,
    name: str,
    digest: str,
    conditions: Sequence[Condition],
    fixed_qps: Sequence[int],
) -> list[dict[str, Any]]:
    """Every frozen row of one image: the fixed QPs, then each condition's targets."""
    from ctc.images import load_image

    image = load_image(image_path)
    pixel_digest = hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()
    rows = [_fixed_row(cached, image, name, digest, qp, conditions[0]) for qp in fixed_qps]
    with tempfile.TemporaryDirectory(prefix="ctc-freeze-") as out:
        for cond in conditions:
            for target in cond.targets_bpp:
                cached.requested = []
                rel = f"{name}-{cond.name}-{target:g}.{cached.extension}"
                job = Job(cached.name, cached.version(), name, str(image_path), digest, target,
                          cond, out, rel)  # fmt: skip
                row = execute(job, cached)
                chosen = int(round(row["knob_value"]))
                tried = sorted(set(cached.requested))
                row["encode_seconds"] = cached.seconds[(pixel_digest, chosen)]
                row["rate_control_seconds"] = sum(cached.seconds[(pixel_digest, q)] for q in tried)
                rows.append({c: row.get(c) for c in CSV_COLUMNS})
    return rows


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """The frozen CSV: CSV_COLUMNS, empty cells for None, floats as Python writes them."""
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            writer.writerow(["" if r.get(c) is None else r[c] for c in CSV_COLUMNS])
    os.replace(tmp, path)


def update_manifest(
    folder: Path,
    dataset: Dataset,
    checksums: dict[str, str],
    codec: Codec,
    conditions: Sequence[Condition],
    fixed_qps: Sequence[int],
    n_rows: int,
    missing: list[str],
    name: str | None = None,
    file: str | None = None,
    timing: str = "wall",
) -> None:
    """Record the dataset's pixel checksums and this anchor's version, conditions and rows,
    under `name` (default codec.name), its rows in `file` (default NAME.csv), and whether their
    seconds are wall or CPU time (`timing`)."""
    name = name or codec.name
    path = folder / MANIFEST
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    if manifest.get("pixel_sha256", checksums) != checksums:
        raise SystemExit(f"{path}: holds results of another dataset (pixel checksums differ)")
    manifest["dataset"] = dataset.name
    manifest["pixel_sha256"] = checksums
    anchors = manifest.setdefault("anchors", {})
    anchors[name] = {
        "version": codec.version(),
        "file": file or f"{name}.csv",
        "rows": n_rows,
        "fixed_qps": list(fixed_qps),
        "fixed_qp_metrics": conditions[0].name,
        "conditions": {
            c.name: {"hash": c.hash, "targets_bpp": list(c.targets_bpp)} for c in conditions
        },
        "missing_images": missing,
        "timing": timing,
        "generated": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def freeze(
    codec_name: str,
    dataset: str,
    out: Path,
    cache: Path,
    conditions: Sequence[str] = CONDITIONS,
    fixed_qps: Sequence[int] = FIXED_QPS,
    deadline: float | None = None,
    cpu_time: bool = False,
) -> Path:
    """Freeze one anchor; images already done (rows cached) are not redone. Stops starting new
    images after `deadline` (time.time()) and freezes what finished. cpu_time: rows' encode and
    rate-control seconds are CPU seconds (CachedEncodes), for a freeze run at low priority
    beside other work, whose wall times would measure the waiting."""
    codec = load_codec(codec_name)
    conds = [load_condition(c) for c in conditions]
    data = resolve_dataset(dataset)
    checksums = data.checksums()
    cached = CachedEncodes(codec, cache, cpu_time)
    rows_dir = cached.folder / "rows" / hashlib.sha256(
        json.dumps([[c.hash, c.targets_bpp] for c in conds] + [list(fixed_qps)]
                   + (["cpu"] if cpu_time else [])).encode()
    ).hexdigest()[:12]  # fmt: skip
    rows_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    missing = []
    for im in data.images:
        done = rows_dir / f"{im.name}-{checksums[im.name][:16]}.json"
        if done.is_file():
            rows += json.loads(done.read_text())
            continue
        lock = done.with_suffix(".lock")
        if (deadline is not None and time.time() > deadline) or not _take(lock):
            missing.append(im.name)
            continue
        start, before = time.perf_counter(), cached.encodes
        try:
            new = image_rows(cached, im.path, im.name, checksums[im.name], conds, fixed_qps)
            done.write_text(json.dumps(new))
        finally:
            lock.unlink(missing_ok=True)
        rows += new
        print(f"{codec_name} {im.name}: {len(new)} rows, {cached.encodes - before} encodes, "
              f"{time.perf_counter() - start:.1f} s", flush=True)  # fmt: skip
    for name in list(missing):  # finished meanwhile by another freeze process
        done = rows_dir / f"{name}-{checksums[name][:16]}.json"
        if done.is_file():
            rows += json.loads(done.read_text())
            missing.remove(name)
    rows.sort(key=_order)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{codec.name}.csv"
    write_rows(path, rows)
    update_manifest(out, data, checksums, codec, conds, fixed_qps, len(rows), missing,
                    timing="cpu" if cpu_time else "wall")  # fmt: skip
    return path


class FreezeError(SystemExit):
    """What freeze_run refuses, in one line naming the folder or the condition. A SystemExit
    (a program that calls freeze_run ends with the message); main() prints it as one error
    line and exits 2."""


def csv_name(spec: str) -> str:
    """The frozen CSV of a codec spec: SPEC.csv, the spec made safe for a file name (a
    MODULE:CLASS spec's ':' becomes '_'); the manifest names it ("file")."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", spec).strip("._") + ".csv"


def _run_store(folder: Path) -> Path:
    """The results store of a `ctc run` folder; FreezeError where there is none. Checked before
    opening it: ctc.store.Store would create one in a folder that has none."""
    if not folder.is_dir():
        what = "a file" if folder.exists() else "missing"
        raise FreezeError(f"--from-run {folder}: not a `ctc run` folder ({what})")
    store = folder / STORE_FILE
    if not store.is_file():
        raise FreezeError(f"--from-run {folder}: not a `ctc run` folder (no {STORE_FILE})")
    return store


def freeze_run(codec_name: str, runs: Sequence[Path], dataset: str, out: Path) -> Path:
    """Freeze a codec's rows from finished `ctc run` folders (one per condition), for a codec
    that matches its rate itself (nic-ref: its continuous knob has no fixed QPs to cache).

    Every row of the codec in each folder's store, under the condition of the folder's latest
    run of it, must be finished for every image of the dataset and every target, at the
    codec's version here; else FreezeError (a SystemExit) names what is missing, or the
    versions where the rows are of another. Refused as well: a folder that is not a `ctc run`
    folder (no results.sqlite, or one that is not a results store; none is created), and a
    condition given twice (the same folder twice, or two folders of one condition): rows are
    never duplicated. Writes OUT/CODEC.csv and its manifest entry under `codec_name`, the spec
    as `ctc run` names the rows (a MODULE:CLASS spec too: ctc.frozen looks a codec's frozen
    rows up by its spec); the CSV's name is the spec made safe for a file (csv_name).
    """
    from ctc.store import Store, StoreError

    runs = [Path(folder) for folder in runs]
    for folder in runs:
        _run_store(folder)
    codec = load_codec(codec_name)
    version = codec.version()
    data = resolve_dataset(dataset)
    checksums = data.checksums()
    rows, conds, seen = [], [], {}
    for folder in runs:
        try:
            with Store(folder) as store:
                records = [r for r in store.runs()
                           if r["record"].get("codecs", {}).get(codec_name)]  # fmt: skip
                if not records:
                    raise FreezeError(f"{folder}: no run of {codec_name}")
                record = records[-1]["record"]
                cond = SimpleNamespace(
                    name=record["condition"]["name"], hash=record["condition_hash"],
                    targets_bpp=tuple(record["condition"]["targets_bpp"]),
                )  # fmt: skip
                ours = [r for r in store.results() if r["codec"] == codec_name
                        and r["condition_hash"] == cond.hash]  # fmt: skip
        except StoreError as e:
            raise FreezeError(f"--from-run {folder}: not a `ctc run` folder ({e})") from None
        for key in (cond.name, cond.hash):
            if key in seen:
                again = "given twice" if seen[key] == folder.resolve() else "in two folders"
                raise FreezeError(
                    f"condition {cond.name} ({cond.hash[:12]}) is {again}: {seen[key]} and "
                    f"{folder}; give one `ctc run` folder per condition (rows are never "
                    "duplicated)"
                )
        seen[cond.name] = seen[cond.hash] = folder.resolve()
        found = [r for r in ours if r["codec_version"] == version]
        others = sorted({r["codec_version"] for r in ours} - {version})
        if not found and others:
            raise FreezeError(
                f"{folder}: {codec_name}'s {cond.name} rows are of version "
                f"{', '.join(map(repr, others))}; {codec_name} here is {version!r}"
            )
        expected = {(n, t) for n in checksums for t in cond.targets_bpp}
        have = {(r["image"], r["target_bpp"]) for r in found
                if checksums.get(r["image"]) == r["image_sha256"]}  # fmt: skip
        if expected - have:
            raise FreezeError(f"{folder}: {len(expected - have)} of {codec_name}'s "
                              f"{len(expected)} {cond.name} rows are missing")  # fmt: skip
        rows += [{c: r.get(c) for c in CSV_COLUMNS} for r in found
                 if (r["image"], r["target_bpp"]) in expected]  # fmt: skip
        conds.append(cond)
    rows.sort(key=_order)
    out.mkdir(parents=True, exist_ok=True)
    path = out / csv_name(codec_name)
    write_rows(path, rows)
    update_manifest(out, data, checksums, codec, conds, [], len(rows), [], codec_name, path.name)
    return path


def _take(lock: Path) -> bool:
    """Claim an image for this process (so that several freeze processes share the work): create
    `lock` holding our pid; False when a live process holds it, a dead one's is taken over."""
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text() or "0")
                os.kill(pid, 0)
                return False
            except (ValueError, ProcessLookupError, FileNotFoundError):
                lock.unlink(missing_ok=True)
                continue
            except PermissionError:  # alive, another user's
                return False
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True
    return False


def _order(row: dict[str, Any]) -> tuple:
    """Fixed-QP rows first (by QP), then each condition's rows by target; images in order."""
    fixed = row["condition"] == "fixed_qp"
    knob = row["knob_value"] if fixed else 0.0
    return (not fixed, row["condition"], row["target_bpp"] or 0.0, knob, row["image"])


PROG = "python -m anchors.freeze"


def _minutes(text: str) -> float:
    """--minutes: a finite number of minutes, at least 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a number of minutes >= 0, got {text!r}")
    return value


def _qps(text: str) -> list[int]:
    """--fixed-qps: whole numbers separated by spaces or commas ("" for none)."""
    try:
        return [int(q) for q in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole QPs, got {text!r}") from None


def _error(message: str) -> None:
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line. Errors are one line on stderr: exit 2 for what was asked wrongly (an
    unknown codec, options that do not go together, a `--from-run` folder that cannot be
    frozen, an unknown dataset or condition), 1 for a codec that fails to load."""
    from ctc.condition import ConditionError
    from ctc.datasets import DatasetError
    from ctc.registry import CodecLoadError, registered, well_formed

    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--codec", required=True, help="anchor name in ctc.codecs (bpg, vvc)")
    parser.add_argument("--dataset", required=True, help="dataset name or folder (Kodak)")
    parser.add_argument("--out", type=Path, required=True, help="e.g. anchors/results/kodak")
    parser.add_argument("--cache", type=Path, default=None, help="encode cache folder")
    parser.add_argument("--conditions", default=None,
                        help=f"default {','.join(CONDITIONS)}")  # fmt: skip
    parser.add_argument("--fixed-qps", type=_qps, default=None,
                        help=f"default {' '.join(map(str, FIXED_QPS))}")  # fmt: skip
    parser.add_argument("--minutes", type=_minutes, default=None,
                        help="start no new image after this many minutes (0: none, only "
                        "write what is done)")  # fmt: skip
    parser.add_argument("--cpu-time", action="store_true",
                        help="time encodes in CPU seconds (a freeze at low priority)")  # fmt: skip
    parser.add_argument("--from-run", type=Path, action="append", default=[], metavar="DIR",
                        help="freeze the codec's rows of these finished `ctc run` folders "
                        "instead of encoding (a codec with its own rate matching); repeatable, "
                        "one folder per condition")  # fmt: skip
    args = parser.parse_args(argv)
    if not well_formed(args.codec):
        _error(f"--codec: expected NAME, NAME:ARGUMENT or MODULE:CLASS, got {args.codec!r}")
        return 2
    if ":" not in args.codec and args.codec not in registered():
        _error(f"unknown codec {args.codec!r} (registered: {', '.join(registered()) or 'none'}; "
               "a class that is not registered is named MODULE:CLASS)")  # fmt: skip
        return 2
    given = [option for option, value in (("--conditions", args.conditions),
             ("--fixed-qps", args.fixed_qps), ("--minutes", args.minutes),
             ("--cache", args.cache), ("--cpu-time", args.cpu_time or None))
             if value is not None]  # fmt: skip
    if args.from_run and given:
        _error(f"{', '.join(given)} do{'es' * (len(given) == 1)} not apply with --from-run "
               "(the rows are those of the runs)")  # fmt: skip
        return 2
    try:
        if args.from_run:
            print(f"wrote {freeze_run(args.codec, args.from_run, args.dataset, args.out)}")
            return 0
        deadline = None if args.minutes is None else time.time() + 60 * args.minutes
        conditions = args.conditions if args.conditions is not None else ",".join(CONDITIONS)
        path = freeze(
            args.codec, args.dataset, args.out, args.cache or default_cache(),
            [c for c in conditions.split(",") if c],
            args.fixed_qps if args.fixed_qps is not None else FIXED_QPS, deadline, args.cpu_time,
        )  # fmt: skip
    except (FreezeError, ConditionError, DatasetError) as e:
        _error(str(e))
        return 2
    except CodecLoadError as e:
        _error(str(e))
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
