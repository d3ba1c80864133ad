"""A CLIC track judged on a run's rows: one point per image chosen, the set's totals, a verdict.

A CLIC condition (ctc.condition, tolerance scope "dataset") codes every image at a sweep of
targets; each finished row is one candidate RD point of its image (bytes, SSE over its RGB
samples, MS-SSIM RGB). For each codec version of the run, `judge` chooses one point per image
with ctc.clic.allocate, for each budget of a low-rate track (the most aggregate PSNR within
the budget) or for the floors of the transparent track (the fewest total bytes that meet
them), and says how the set stands:

- low_rate: "fits" (the chosen files within the budget), or "cannot fit" when even the
  smallest point of every image exceeds it;
- transparent: "meets" (both floors), or "cannot meet" when no choice reaches them;
- "incomplete" when some image of the run has no row for the codec, or a row lacks the SSE
  (a condition without psnr_rgb) or the MS-SSIM a floor needs: a partial set is no entry.

Beside the allocation, the uniform baseline a participant without allocation would submit,
every image aimed at one common target of the sweep: low_rate, the highest target whose files
fit the budget (the budget's own rate where they do); transparent, the lowest target at which
the whole set meets the floors.
"""

from __future__ import annotations

import csv
import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ctc.clic.allocate import (
    Allocation,
    ImagePoints,
    InfeasibleError,
    RdPoint,
    allocate_budget,
    allocate_thresholds,
)
from ctc.clic.rules import (
    SAMPLES_PER_PIXEL,
    ClicTrack,
    aggregate_msssim,
    aggregate_psnr,
    budget_bytes,
)


@dataclass(frozen=True)
class Budget:
    """A low-rate budget: its rate (bpp) and bytes, and how the bytes were found ("floor(bpp x
    sum(H x W) / 8)" over the run's images, or "given" on the command line)."""

    bpp: float
    nbytes: int
    rule: str


@dataclass(frozen=True)
class Totals:
    """A choice of one row per image: total bytes, aggregate PSNR (dB) and MS-SSIM (None
    without one on every row); target: the common target of a uniform choice, else None."""

    total_bytes: int
    psnr: float
    msssim: float | None
    target: float | None = None


@dataclass(frozen=True)
class Outcome:
    """One codec version on one track (and budget): what was chosen and how the set stands.

    verdict: "fits", "cannot fit", "meets", "cannot meet" or "incomplete"; reason: one line
    saying why where the verdict is not "fits" or "meets". chosen: the row taken for each
    image (image order), empty without an allocation. uniform: the baseline of the module
    docstring, None where the rows have none.
    """

    condition: str
    codec: str
    codec_version: str
    track: str
    images: int
    budget: Budget | None
    chosen: tuple[dict[str, Any], ...]
    totals: Totals | None
    verdict: str
    reason: str | None
    uniform: Totals | None

    @property
    def gain_db(self) -> float | None:
        """Aggregate PSNR of the allocation minus that of the uniform baseline (low rate)."""
        if self.track != "low_rate" or self.totals is None or self.uniform is None:
            return None
        return self.totals.psnr - self.uniform.psnr

    @property
    def saving_percent(self) -> float | None:
        """Bytes saved by the allocation against the uniform baseline, in % (transparent)."""
        if self.track != "transparent" or self.totals is None or self.uniform is None:
            return None
        return 100.0 * (1.0 - self.totals.total_bytes / self.uniform.total_bytes)


def track_of(record: Mapping[str, Any]) -> ClicTrack | None:
    """The ClicTrack of a run record's condition (Condition.to_dict), None for a condition
    without CLIC rules (or a record from before they existed)."""
    block = record.get("clic")
    if not isinstance(block, Mapping):
        return None
    return ClicTrack(
        track=block["track"],
        budgets_bpp=tuple(block.get("budgets_bpp") or ()),
        min_psnr=block.get("min_psnr"),
        min_msssim=block.get("min_msssim"),
        max_decoder_bytes=block.get("max_decoder_bytes"),
    )


def judge(
    rows: Sequence[Mapping[str, Any]],
    condition: Mapping[str, Any],
    budgets: Sequence[int] = (),
) -> list[Outcome]:
    """The outcomes of every codec version of `rows` on the CLIC track of `condition` (a
    Condition.to_dict record): one per budget of a low-rate track, one for a transparent one.

    rows: result rows (ctc.store) of that condition; only those at one of its targets count.
    budgets: explicit budgets in bytes, one per budget of the track in the order of its
    budgets_bpp (the published numbers, such as CLIC 2019's 4,722,341), else each is
    floor(bpp x sum(H x W) / 8) over the run's images. Raises ValueError for a condition
    without CLIC rules or for a wrong number of budgets.
    """
    track = track_of(condition)
    if track is None:
        raise ValueError(f"condition {condition.get('name')!r} has no CLIC rules")
    if budgets and len(budgets) != len(track.budgets_bpp):
        raise ValueError(
            f"{len(budgets)} budget(s) given for the {len(track.budgets_bpp)} of "
            f"{condition.get('name')} ({', '.join(f'{b:g} bpp' for b in track.budgets_bpp)})"
        )
    targets = set(condition.get("targets_bpp") or ())
    rows = [r for r in rows if r["target_bpp"] in targets]
    images = sorted({_image_key(r): r["width"] * r["height"] for r in rows}.items())
    out = []
    for codec, version in sorted({(r["codec"], r["codec_version"]) for r in rows}):
        mine = [r for r in rows if (r["codec"], r["codec_version"]) == (codec, version)]
        base = dict(
            condition=str(condition.get("name")), codec=codec, codec_version=version,
            track=track.track, images=len(images),
        )  # fmt: skip
        if track.track == "transparent":
            out.append(_transparent(base, track, mine, images))
            continue
        for n, bpp in enumerate(track.budgets_bpp):
            if budgets:
                budget = Budget(bpp, int(budgets[n]), "given")
            else:
                pixels = [count for _, count in images]
                rule = f"floor({bpp:g} x {sum(pixels):,} pixels / 8)"
                budget = Budget(bpp, budget_bytes(bpp, pixels), rule)
            out.append(_low_rate(base, budget, mine, images))
    return out


def _image_key(row: Mapping[str, Any]) -> tuple[str, str]:
    return (row["image"], row["image_sha256"])


def _points(
    rows: Sequence[Mapping[str, Any]], images: list[tuple[tuple[str, str], int]], msssim: bool
) -> tuple[list[ImagePoints], str | None]:
    """Each image's candidate points from its rows (key: the row), or why they cannot be had."""
    by_image: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        by_image.setdefault(_image_key(r), []).append(r)
    missing = [key[0] for key, _ in images if key not in by_image]
    if missing:
        return [], f"{len(images) - len(missing)} of {len(images)} images have rows; missing: " + (
            _names(missing)
        )
    no_sse = sorted({r["image"] for r in rows if r.get("sse_rgb") is None})
    if no_sse:
        return [], f"rows without the RGB squared error (psnr_rgb): {_names(no_sse)}"
    if msssim:
        no_msssim = sorted({r["image"] for r in rows if r.get("msssim_rgb") is None})
        if no_msssim:
            return [], f"rows without MS-SSIM RGB: {_names(no_msssim)}"
    out = []
    for key, pixels in images:
        points = tuple(
            RdPoint(
                nbytes=int(r["bytes"]),
                sse=float(r["sse_rgb"]),
                pixels=pixels,
                msssim=None if r.get("msssim_rgb") is None else float(r["msssim_rgb"]),
                key=r,
            )  # fmt: skip
            for r in sorted(by_image[key], key=lambda r: r["target_bpp"])
        )
        out.append(ImagePoints(f"{key[0]}#{key[1]}", points))
    return out, None


def _names(names: Sequence[str], most: int = 5) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _totals(chosen: Sequence[Mapping[str, Any]], target: float | None = None) -> Totals:
    pixels = [int(r["width"]) * int(r["height"]) for r in chosen]
    values = [r.get("msssim_rgb") for r in chosen]
    return Totals(
        total_bytes=sum(int(r["bytes"]) for r in chosen),
        psnr=aggregate_psnr(
            math.fsum(float(r["sse_rgb"]) for r in chosen), SAMPLES_PER_PIXEL * sum(pixels)
        ),
        msssim=None if None in values else aggregate_msssim(values, pixels),
        target=target,
    )


def _uniform_rows(
    rows: Sequence[Mapping[str, Any]], target: float, images: list[tuple[tuple[str, str], int]]
) -> list[Mapping[str, Any]] | None:
    """The row of each image at `target`, None unless every image has one."""
    at = {_image_key(r): r for r in rows if r["target_bpp"] == target}
    chosen = [at.get(key) for key, _ in images]
    return None if None in chosen else chosen


def _outcome(base: dict, budget: Budget | None, allocation: Allocation | None, **rest) -> Outcome:
    chosen = tuple(allocation.keys) if allocation else ()
    totals = _totals(chosen) if allocation else None
    return Outcome(**base, budget=budget, chosen=chosen, totals=totals, **rest)


def _low_rate(
    base: dict, budget: Budget, rows: Sequence[Mapping[str, Any]], images: list
) -> Outcome:
    points, problem = _points(rows, images, msssim=False)
    uniform = None
    for target in sorted({r["target_bpp"] for r in rows}, reverse=True):
        chosen = None if problem else _uniform_rows(rows, target, images)
        totals = _totals(chosen, target) if chosen else None
        if totals and totals.total_bytes <= budget.nbytes:
            uniform = totals
            break
    if problem:
        return _outcome(base, budget, None, verdict="incomplete", reason=problem, uniform=None)
    try:
        allocation = allocate_budget(points, budget.nbytes)
    except InfeasibleError as e:
        return _outcome(base, budget, None, verdict="cannot fit", reason=str(e), uniform=uniform)
    return _outcome(base, budget, allocation, verdict="fits", reason=None, uniform=uniform)


def _transparent(
    base: dict, track: ClicTrack, rows: Sequence[Mapping[str, Any]], images: list
) -> Outcome:
    points, problem = _points(rows, images, msssim=track.min_msssim is not None)
    if problem:
        return _outcome(base, None, None, verdict="incomplete", reason=problem, uniform=None)
    uniform = None
    for target in sorted({r["target_bpp"] for r in rows}):
        chosen = _uniform_rows(rows, target, images)
        totals = _totals(chosen, target) if chosen else None
        if totals and _meets(totals, track):
            uniform = totals
            break
    try:
        allocation = allocate_thresholds(points, track.min_psnr, track.min_msssim)
    except InfeasibleError as e:
        return _outcome(base, None, None, verdict="cannot meet", reason=str(e), uniform=uniform)
    return _outcome(base, None, allocation, verdict="meets", reason=None, uniform=uniform)


def _meets(totals: Totals, track: ClicTrack) -> bool:
    psnr_ok = track.min_psnr is None or totals.psnr >= track.min_psnr
    msssim_ok = track.min_msssim is None or (
        totals.msssim is not None and totals.msssim >= track.min_msssim
    )
    return psnr_ok and msssim_ok


def judge_store(
    rows: Sequence[Mapping[str, Any]],
    runs: Sequence[Mapping[str, Any]],
    budgets: Sequence[int] = (),
) -> list[Outcome]:
    """`judge` for every CLIC condition that a run of the store ran (its latest record per
    condition name), on the rows of that condition's hash."""
    latest: dict[str, Mapping[str, Any]] = {}
    for run in runs:
        record = run["record"].get("condition", {})
        if track_of(record) is not None:
            latest[record["name"]] = (run["condition_hash"], record)
    out = []
    for _, (chash, record) in sorted(latest.items()):
        out += judge([r for r in rows if r["condition_hash"] == chash], record, budgets)
    return out


OUTCOME_COLUMNS = (
    "condition", "codec", "track", "budget", "total_bytes", "psnr", "msssim", "verdict",
    "uniform", "uniform_bytes", "uniform_psnr", "gain",
)  # fmt: skip
OUTCOME_HEADERS = {
    "budget": "budget (bytes)", "total_bytes": "bytes", "psnr": "psnr_dataset",
    "msssim": "msssim_dataset", "uniform": "uniform at", "uniform_bytes": "uniform bytes",
    "uniform_psnr": "uniform psnr", "gain": "gain",
}  # fmt: skip


def outcome_line(outcome: Outcome) -> dict[str, Any]:
    """An outcome as a flat table line (OUTCOME_COLUMNS): the budget as "bytes at bpp", the
    gain as "+x.xx dB" (low rate) or "x.x % fewer bytes" (transparent)."""
    budget = outcome.budget
    gain = outcome.gain_db
    saving = outcome.saving_percent
    return {
        "condition": outcome.condition,
        "codec": outcome.codec,
        "track": outcome.track,
        "budget": f"{budget.nbytes:,} at {budget.bpp:g} bpp" if budget else None,
        "total_bytes": f"{outcome.totals.total_bytes:,}" if outcome.totals else None,
        "psnr": outcome.totals.psnr if outcome.totals else None,
        "msssim": outcome.totals.msssim if outcome.totals else None,
        "verdict": outcome.verdict,
        "uniform": f"{outcome.uniform.target:g} bpp" if outcome.uniform else None,
        "uniform_bytes": f"{outcome.uniform.total_bytes:,}" if outcome.uniform else None,
        "uniform_psnr": outcome.uniform.psnr if outcome.uniform else None,
        "gain": f"{gain:+.3f} dB"
        if gain is not None
        else f"{saving:.1f} % fewer bytes"
        if saving is not None
        else None,
    }


def write_submission(outcome: Outcome, run_folder: str | Path, dest: str | Path) -> int:
    """Copy the chosen bitstreams into `dest`, one file per image named after it (kodim01.png's
    stream as kodim01.<extension>), as the CLIC decoder expects them, plus allocation.csv
    (image, target, bytes, bpp, PSNR, MS-SSIM of each choice). Returns the files copied.

    Raises ValueError (one line) without writing anything when the outcome has no choice, dest
    exists and is not an empty folder, a chosen row is a frozen anchor result (no bitstream
    in the run), two images would share a file name, or a bitstream is missing or not its
    recorded size.
    """
    dest, run_folder = Path(dest), Path(run_folder)
    if not outcome.chosen:
        raise ValueError(f"{outcome.codec}: no allocation to write ({outcome.verdict}: "
                         f"{outcome.reason})")  # fmt: skip
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ValueError(f"{dest}: exists and is not an empty folder; nothing written")
    copies: dict[str, Path] = {}
    for row in outcome.chosen:
        bitstream = str(row["bitstream"])
        if bitstream.startswith("frozen:"):
            raise ValueError(f"{row['image']}: a frozen anchor result has no bitstream in the "
                             "run; run the anchor with --no-frozen")  # fmt: skip
        source = run_folder / bitstream
        size = source.stat().st_size if source.is_file() else None
        if size != int(row["bytes"]):
            found = "missing" if size is None else f"{size} bytes, not {row['bytes']}"
            raise ValueError(f"{row['image']}: bitstream {source} is {found}; nothing written")
        name = PurePosixPath(str(row["image"])).stem + PurePosixPath(bitstream).suffix
        if name in copies:
            raise ValueError(f"two images would both be written as {name}; nothing written")
        copies[name] = source
    dest.mkdir(parents=True, exist_ok=True)
    for name, source in copies.items():
        shutil.copyfile(source, dest / name)
    _write_allocation_csv(outcome, dest / "allocation.csv")
    return len(copies)


def _write_allocation_csv(outcome: Outcome, path: Path) -> None:
    columns = ("image", "target_bpp", "bytes", "bpp", "psnr_rgb", "msssim_rgb", "knob_value")
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for row in outcome.chosen:
            writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
