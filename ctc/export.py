"""`ctc export`: a run's bitstreams and kept reconstructions in another tool's file layout.

The `jpeg-ai` layout is the one the JPEG AI reference software writes and its objective quality
assessment framework reads (names from the JPEG AI common training and test conditions):

    OUT_DIR/bit/<codec>_<image id>_<rate>.bits
    OUT_DIR/rec/<codec>_<image id>_<W>x<H>_8bit_sRGB_<rate>.png
    OUT_DIR/manifest.csv

<rate> is the target bpp x 100, rounded to an integer, at least three digits (0.12 -> 012);
<image id> is the image's name up to a `_<W>x<H>` part if it has one (00001_TE_2096x1400_8bit_sRGB
-> 00001_TE), else the whole name; <codec> is the codec spec with every character other than
letters, digits and `-` replaced by `-` (an `_` would split the name's fields). The manifest
has one line per exported row: both file names and the row's codec, version, condition, image,
target, bpp and bytes, so that scores computed on the files can be joined back to the store.

Everything is checked before anything is written: a row without its own bitstream (a frozen
anchor result), without a kept reconstruction (`ctc run --keep-reconstructions`), or whose name
would clash with another row's is refused (ExportError), as is an OUT_DIR that is not empty
unless forced. Files are hard-linked where the file system allows it, else copied; each one is
written under a temporary name and then renamed.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ctc import frozen
from ctc.job import reconstruction_path
from ctc.store import FILENAME, Store

LAYOUTS = ("jpeg-ai",)
BIT_DEPTH = 8
FORMAT = "sRGB"  # the harness codes 8-bit sRGB RGB images; reconstructions are RGB PNGs
MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = (
    "bit", "rec", "codec", "codec_version", "condition", "condition_hash", "image",
    "image_sha256", "width", "height", "target_bpp", "bpp", "bytes",
)  # fmt: skip
RERUN_HINT = "rerun `ctc run CONDITION --out RUN_DIR --keep-reconstructions` (it decodes the kept "
RERUN_HINT += "bitstreams; nothing is encoded again)"


class ExportError(Exception):
    """The export cannot be made as asked (no results, missing files, OUT_DIR not empty)."""


def codec_field(codec: str) -> str:
    """A codec spec as the codec field of a JPEG AI file name (no `_`, no path characters)."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", codec).strip("-") or "codec"


def image_id(image: str) -> str:
    """An image's name without its `_<W>x<H>...` part, as the JPEG AI software names images."""
    match = re.fullmatch(r"(.*)_\d+x\d+(?:_.*)?", image)
    name = match.group(1) if match and match.group(1) else image
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)


def rate_field(target_bpp: float) -> str:
    """Target bpp x 100, rounded half up, at least three digits: 0.12 -> '012'."""
    return f"{math.floor(target_bpp * 100 + 0.5):03d}"


def jpeg_ai_names(codec: str, image: str, width: int, height: int, target_bpp: float):
    """(bitstream name, reconstruction name) of one row in the jpeg-ai layout."""
    stem = f"{codec_field(codec)}_{image_id(image)}"
    rate = rate_field(target_bpp)
    return (
        f"{stem}_{rate}.bits",
        f"{stem}_{width}x{height}_{BIT_DEPTH}bit_{FORMAT}_{rate}.png",
    )


def _select(rows: list[dict[str, Any]], condition: str | None, codecs: Sequence[str] | None):
    if condition is not None:
        wanted = condition.lower()
        picked = [
            r
            for r in rows
            if r["condition"] == condition or r["condition_hash"].lower().startswith(wanted)
        ]
        if not picked:
            held = sorted({f"{r['condition']} ({r['condition_hash'][:8]})" for r in rows})
            raise ExportError(f"no rows of condition {condition!r} (held: {', '.join(held)})")
        rows = picked
    if codecs:
        held = sorted({r["codec"] for r in rows})
        unknown = [c for c in codecs if c not in held]
        if unknown:
            raise ExportError(f"no rows of codec {unknown[0]!r} (held: {', '.join(held)})")
        rows = [r for r in rows if r["codec"] in codecs]
    hashes = sorted({(r["condition"], r["condition_hash"]) for r in rows})
    if len(hashes) > 1:
        held = ", ".join(f"{name} ({h[:8]})" for name, h in hashes)
        raise ExportError(f"rows of {len(hashes)} conditions ({held}); choose one with --condition")
    return rows


def _describe(row: dict[str, Any]) -> str:
    return f"{row['codec']} {row['image']} {row['target_bpp']:g} bpp"


def _check_files(rows: list[dict[str, Any]], run_dir: Path) -> None:
    frozen_rows = [r for r in rows if frozen.is_frozen(r)]
    if frozen_rows:
        codecs = ", ".join(sorted({r["codec"] for r in frozen_rows}))
        raise ExportError(
            f"{len(frozen_rows)} rows are frozen anchor results without a bitstream or "
            f"reconstruction (codec {codecs}); leave them out with --codec, or encode them with "
            "`ctc run CONDITION --out RUN_DIR --no-frozen --keep-reconstructions`"
        )
    for r in rows:
        path = run_dir / r["bitstream"]
        if not path.is_file() or path.stat().st_size != r["bytes"]:
            raise ExportError(f"{path}: the bitstream of {_describe(r)} is missing or changed")
    missing = [
        r for r in rows if not (run_dir / str(reconstruction_path(r["bitstream"]))).is_file()
    ]
    if missing:
        raise ExportError(
            f"{len(missing)} of {len(rows)} rows have no kept reconstruction (first: "
            f"{_describe(missing[0])}); {RERUN_HINT}"
        )


def _place(source: Path, target: Path) -> None:
    """`source` at `target`: hard-linked where possible, else copied; via a temporary name."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def export(
    run_dir: str | Path,
    dest: str | Path,
    layout: str = "jpeg-ai",
    condition: str | None = None,
    codecs: Sequence[str] | None = None,
    force: bool = False,
) -> int:
    """Write the rows of `run_dir` (optionally one condition, some codecs) into `dest` in
    `layout`; return the number of rows exported. ExportError when it cannot."""
    if layout not in LAYOUTS:
        raise ExportError(f"unknown layout {layout!r} (known: {', '.join(LAYOUTS)})")
    run_dir, dest = Path(run_dir), Path(dest)
    if not (run_dir / FILENAME).is_file():
        raise ExportError(f"no results in {run_dir} (no {FILENAME})")
    if dest.exists() and not dest.is_dir():
        raise ExportError(f"{dest} exists and is not a folder")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise ExportError(f"{dest} is not empty; choose a new folder or add --force")
    with Store(run_dir) as store:
        rows = store.results()
    if not rows:
        raise ExportError(f"no finished jobs in {run_dir}")
    rows = _select(rows, condition, codecs)
    _check_files(rows, run_dir)
    names: dict[str, dict[str, Any]] = {}
    planned = []
    for r in rows:
        bit, rec = jpeg_ai_names(r["codec"], r["image"], r["width"], r["height"], r["target_bpp"])
        for name in (bit, rec):
            if name in names:
                raise ExportError(
                    f"{_describe(r)} and {_describe(names[name])} would both be named {name} "
                    "(two versions of one codec, or specs alike once made file names); export "
                    "one --codec at a time"
                )
            names[name] = r
        planned.append((r, bit, rec))
    (dest / "bit").mkdir(parents=True, exist_ok=True)
    (dest / "rec").mkdir(exist_ok=True)
    manifest = io.StringIO()
    writer = csv.DictWriter(manifest, MANIFEST_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r, bit, rec in planned:
        _place(run_dir / r["bitstream"], dest / "bit" / bit)
        _place(run_dir / str(reconstruction_path(r["bitstream"])), dest / "rec" / rec)
        writer.writerow({**r, "bit": f"bit/{bit}", "rec": f"rec/{rec}"})
    tmp = dest / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(manifest.getvalue(), encoding="utf-8")
    os.replace(tmp, dest / MANIFEST)
    return len(planned)
