"""Frozen anchor results: rows computed once and shipped, used by a run instead of encoding.

A codec may point to its frozen results with an optional attribute `frozen_results` (a folder,
e.g. anchors/results): every DATASET/manifest.json below it that lists the codec by name, with
its frozen CSV (the store's columns, one row per image and target, fixed-QP rows with an empty
target). ctc reads them without importing the codec's package.

A frozen row stands in for a job only when everything that determines the row matches:
- the anchor's version string equals codec.version() (same implementation, versions, settings);
- the image's pixel sha256 equals the manifest's for that image and the row's;
- the condition hash (tolerance, rate control, colour conventions, metrics) is the row's;
- the target bpp is one of the frozen targets.
That is exactly the job key (ctc.store.KEY), so a frozen row is the row the job would compute,
the encoders being deterministic; such rows say so in their `bitstream` column
("frozen:FOLDER/FILE"), and have no bitstream file.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ctc.store import COLUMN_NAMES, KEY, JobKey

PREFIX = "frozen:"
_INT = {"width", "height", "n_encodes", "bytes", "in_tolerance", "sse_rgb", "n_values"}
_TEXT = {"codec", "codec_version", "image", "image_sha256", "condition_hash", "condition",
         "knob_name", "rate_control", "bitstream"}  # fmt: skip


class FrozenError(ValueError):
    """A frozen results file is malformed."""


def _value(column: str, text: str) -> Any:
    if text == "":
        return None
    if column in _TEXT:
        return text
    if column in _INT:
        return int(text)
    return float(text)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a frozen CSV, typed as the store types them."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        unknown = set(reader.fieldnames or ()) - set(COLUMN_NAMES)
        if unknown:
            raise FrozenError(f"{path}: unknown columns {sorted(unknown)}")
        try:
            return [{c: _value(c, t) for c, t in row.items()} for row in reader]
        except ValueError as e:
            raise FrozenError(f"{path}: {e}") from None


def manifests(folder: str | Path) -> list[tuple[Path, dict[str, Any]]]:
    """(path, parsed) of every DATASET/manifest.json under a frozen-results folder."""
    out = []
    for path in sorted(Path(folder).glob("*/manifest.json")):
        try:
            out.append((path, json.loads(path.read_text())))
        except (OSError, ValueError) as e:
            raise FrozenError(f"{path}: unreadable manifest ({e})") from None
    return out


def frozen_rows(codec_name: str, version: str, folder: str | Path) -> dict[JobKey, dict]:
    """The codec's frozen target rows under `folder` whose anchor version and image checksums
    match, by job key; rows carry `bitstream` = "frozen:DATASET/FILE"."""
    rows: dict[JobKey, dict[str, Any]] = {}
    for path, manifest in manifests(folder):
        entry = manifest.get("anchors", {}).get(codec_name)
        if not entry or entry.get("version") != version:
            continue
        checksums = manifest.get("pixel_sha256", {})
        source = path.parent / entry["file"]
        for row in read_rows(source):
            if row["target_bpp"] is None or row["codec_version"] != version:
                continue  # fixed-QP rows are not jobs of a condition
            if checksums.get(row["image"]) != row["image_sha256"]:
                continue
            row["bitstream"] = f"{PREFIX}{path.parent.name}/{entry['file']}"
            rows[tuple(row[k] for k in KEY)] = row
    return rows


def matching(jobs: Iterable[Any], codecs: dict[str, Any]) -> dict[JobKey, dict[str, Any]]:
    """Frozen rows for those jobs (ctc.job.Job) whose codec has matching frozen results."""
    wanted: dict[str, list[Any]] = {}
    for job in jobs:
        wanted.setdefault(job.codec, []).append(job)
    out: dict[JobKey, dict[str, Any]] = {}
    for name, codec_jobs in wanted.items():
        folder = getattr(codecs.get(name), "frozen_results", None)
        if not folder or not Path(folder).is_dir():
            continue
        available = frozen_rows(name, codec_jobs[0].codec_version, folder)
        for job in codec_jobs:
            if job.key in available:
                out[job.key] = available[job.key]
    return out


def is_frozen(row: dict[str, Any]) -> bool:
    """Whether a store row came from frozen results."""
    return str(row.get("bitstream", "")).startswith(PREFIX)
