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
- "incomplete" when some image of the run's dataset has no row for the codec (a run still
  going or interrupted), or a row lacks the SSE (a condition without psnr_rgb) or the MS-SSIM
  a floor needs: a partial set is no entry.

A low-rate choice is exact (ctc.clic.allocate.exact_allocation) where the search stays small
(at most EXACT_MAX_PAIRS (bytes, SSE) pairs; Kodak's 24 images fit), else the Lagrangian
heuristic, filled from its own choice and from every uniform choice that fits, so it is never
worse than the uniform baseline; a transparent choice is the threshold heuristic's, or the
uniform one where that takes fewer bytes. Outcome.method says which.

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
    ImagePoints,
    InfeasibleError,
    RdPoint,
    TooLargeError,
    allocate_budget,
    allocate_thresholds,
    exact_allocation,
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
    sum(H x W) / 8)" over the run's images, or "given" on the command line); nbytes is None
    while an image of the run has no row to give its size."""

    bpp: float
    nbytes: int | None
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
    docstring, None where the rows have none. method: how the choice was made ("exact",
    "heuristic", "uniform"; None without one). max_decoder_bytes: the track's limit on the
    decoder package, None where it states none.
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
    method: str | None = None
    max_decoder_bytes: int | None = None

    @property
    def gain_db(self) -> float | None:
        """Aggregate PSNR of the allocation minus that of the uniform baseline (low rate)."""
        if self.track != "low_rate" or self.totals is None or self.uniform is None:
            return None
        gain = self.totals.psnr - self.uniform.psnr
        return gain if math.isfinite(gain) else None  # both lossless: no gain to state

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


EXACT_MAX_PAIRS = 200_000
"""The most (bytes, SSE) pairs the exact low-rate search may keep per step before the
heuristic takes over (a few seconds and tens of MB at this size)."""


def judge(
    rows: Sequence[Mapping[str, Any]],
    condition: Mapping[str, Any],
    budgets: Sequence[int] = (),
    images: Mapping[str, str] | None = None,
    versions: Mapping[str, str] | None = None,
) -> list[Outcome]:
    """The outcomes of the codecs of `rows` on the CLIC track of `condition` (a
    Condition.to_dict record): one per budget of a low-rate track (in the order of its
    budgets_bpp), one for a transparent track.

    rows: result rows (ctc.store) of that condition; only those at one of its targets count.
    budgets: explicit budgets in bytes, one per budget of the track in the order of its
    budgets_bpp (published numbers, such as CLIC 2019's 4,722,341); else each is
    floor(bpp x sum(H x W) / 8) over the images. images: the run's dataset, image name ->
    pixel sha256 (a run record's dataset.pixel_sha256): every one must have rows for an
    entry, and rows of other images are left out; None: the images of the rows. versions:
    codec -> the version to judge (a run record's codecs); None: every version of the rows.
    Raises ValueError for a condition without CLIC rules or a wrong number of budgets.
    """
    track = track_of(condition)
    if track is None:
        raise ValueError(f"condition {condition.get('name')!r} has no CLIC rules")
    if budgets and track.track == "transparent":
        raise ValueError(f"{condition.get('name')} is a transparent track: it has no budgets")
    if budgets and len(budgets) != len(track.budgets_bpp):
        raise ValueError(
            f"{len(budgets)} budget(s) given for the {len(track.budgets_bpp)} of "
            f"{condition.get('name')} ({', '.join(f'{b:g} bpp' for b in track.budgets_bpp)})"
        )
    targets = set(condition.get("targets_bpp") or ())
    rows = [r for r in rows if r["target_bpp"] in targets]
    if images is not None:
        rows = [r for r in rows if images.get(r["image"]) == r["image_sha256"]]
    if versions is not None:
        rows = [
            r for r in rows if versions.get(r["codec"], r["codec_version"]) == r["codec_version"]
        ]
    sizes = {_image_key(r): r["width"] * r["height"] for r in rows}
    expected = sorted(images.items()) if images is not None else sorted(sizes)
    out = []
    for codec, version in sorted({(r["codec"], r["codec_version"]) for r in rows}):
        mine = [r for r in rows if (r["codec"], r["codec_version"]) == (codec, version)]
        base = dict(
            condition=str(condition.get("name")), codec=codec, codec_version=version,
            track=track.track, images=len(expected), max_decoder_bytes=track.max_decoder_bytes,
        )  # fmt: skip
        if track.track == "transparent":
            out.append(_transparent(base, track, mine, expected))
            continue
        for n, bpp in enumerate(track.budgets_bpp):
            out.append(_low_rate(base, _budget(bpp, budgets, n, expected, sizes), mine, expected))
    return out


def _budget(bpp: float, budgets: Sequence[int], n: int, expected: list, sizes: dict) -> Budget:
    """The n-th budget: given, else by the rule over the images' pixels."""
    if budgets:
        return Budget(bpp, int(budgets[n]), "given")
    if any(key not in sizes for key in expected):
        return Budget(bpp, None, "floor(bpp x pixels / 8), once every image has a row")
    pixels = [sizes[key] for key in expected]
    return Budget(bpp, budget_bytes(bpp, pixels), f"floor({bpp:g} x {sum(pixels):,} pixels / 8)")


def _image_key(row: Mapping[str, Any]) -> tuple[str, str]:
    return (row["image"], row["image_sha256"])


def _points(
    rows: Sequence[Mapping[str, Any]], expected: list[tuple[str, str]], msssim: bool
) -> tuple[list[ImagePoints], str | None]:
    """Each image's candidate points from its rows (key: the row), or why they cannot be had."""
    by_image: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        by_image.setdefault(_image_key(r), []).append(r)
    missing = [key[0] for key in expected if key not in by_image]
    if missing:
        have = len(expected) - len(missing)
        return [], f"{have} of {len(expected)} images have rows; missing: {_names(missing)}"
    no_sse = sorted({r["image"] for r in rows if r.get("sse_rgb") is None})
    if no_sse:
        return [], f"rows without the RGB squared error (psnr_rgb): {_names(no_sse)}"
    if msssim:
        no_msssim = sorted({r["image"] for r in rows if r.get("msssim_rgb") is None})
        if no_msssim:
            return [], f"rows without MS-SSIM RGB: {_names(no_msssim)}"
    out = []
    for key in expected:
        points = tuple(
            RdPoint(
                nbytes=int(r["bytes"]),
                sse=float(r["sse_rgb"]),
                pixels=int(r["width"]) * int(r["height"]),
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


def _uniforms(
    points: list[ImagePoints], rows: Sequence[Mapping[str, Any]]
) -> list[tuple[Totals, list[int]]]:
    """For every target all images have, rising: the totals of every image at it, and the
    index of each image's point there."""
    out = []
    for target in sorted({r["target_bpp"] for r in rows}):
        index = [
            next((j for j, p in enumerate(image.points) if p.key["target_bpp"] == target), None)
            for image in points
        ]
        if None not in index:
            out.append((_totals(_rows_of(points, index), target), index))
    return out


def _rows_of(points: list[ImagePoints], choice: Sequence[int]) -> list[Mapping[str, Any]]:
    return [image.points[j].key for image, j in zip(points, choice, strict=True)]


def _low_rate(
    base: dict, budget: Budget, rows: Sequence[Mapping[str, Any]], expected: list
) -> Outcome:
    points, problem = _points(rows, expected, msssim=False)
    if problem or budget.nbytes is None:
        return Outcome(**base, budget=budget, chosen=(), totals=None, verdict="incomplete",
                       reason=problem or "an image has no row to size the budget by",
                       uniform=None)  # fmt: skip
    fitting = [
        (totals, choice) for totals, choice in _uniforms(points, rows)
        if totals.total_bytes <= budget.nbytes
    ]  # fmt: skip
    uniform = fitting[-1][0] if fitting else None
    try:
        try:
            allocation = exact_allocation(points, budget.nbytes, max_pairs=EXACT_MAX_PAIRS)
            method = "exact"
        except TooLargeError:
            starts = [choice for _, choice in fitting]
            allocation = allocate_budget(points, budget.nbytes, starts=starts)
            method = "heuristic"
    except InfeasibleError as e:
        return Outcome(**base, budget=budget, chosen=(), totals=None, verdict="cannot fit",
                       reason=str(e), uniform=uniform)  # fmt: skip
    chosen = _rows_of(points, allocation.choice)
    return Outcome(**base, budget=budget, chosen=tuple(chosen), totals=_totals(chosen),
                   verdict="fits", reason=None, uniform=uniform, method=method)  # fmt: skip


def _transparent(
    base: dict, track: ClicTrack, rows: Sequence[Mapping[str, Any]], expected: list
) -> Outcome:
    points, problem = _points(rows, expected, msssim=track.min_msssim is not None)
    if problem:
        return Outcome(**base, budget=None, chosen=(), totals=None, verdict="incomplete",
                       reason=problem, uniform=None)  # fmt: skip
    meeting = [(totals, c) for totals, c in _uniforms(points, rows) if _meets(totals, track)]
    uniform = meeting[0][0] if meeting else None
    try:
        allocation = allocate_thresholds(points, track.min_psnr, track.min_msssim)
    except InfeasibleError as e:
        return Outcome(**base, budget=None, chosen=(), totals=None, verdict="cannot meet",
                       reason=str(e), uniform=uniform)  # fmt: skip
    chosen, method = _rows_of(points, allocation.choice), "heuristic"
    if uniform is not None and uniform.total_bytes < allocation.total_bytes:
        chosen, method = _rows_of(points, meeting[0][1]), "uniform"
    return Outcome(**base, budget=None, chosen=tuple(chosen), totals=_totals(chosen),
                   verdict="meets", reason=None, uniform=uniform, method=method)  # fmt: skip


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
    """`judge` for every CLIC condition that a run of the store ran, by name: its latest
    run's record gives the rules, the targets and the dataset's images; each codec is judged
    at the version its latest run of that condition used."""
    latest: dict[str, Mapping[str, Any]] = {}
    versions: dict[str, dict[str, str]] = {}
    for run in runs:
        record = run["record"]
        condition = record.get("condition", {})
        if track_of(condition) is not None:
            latest[condition["name"]] = run
            versions.setdefault(condition["name"], {}).update(record.get("codecs") or {})
    out = []
    for name, run in sorted(latest.items()):
        record = run["record"]
        images = (record.get("dataset") or {}).get("pixel_sha256")
        mine = [r for r in rows if r["condition_hash"] == run["condition_hash"]]
        out += judge(mine, record["condition"], budgets, images, versions[name] or None)
    return out


OUTCOME_COLUMNS = (
    "condition", "codec", "track", "budget", "total_bytes", "psnr", "msssim", "verdict",
    "method", "uniform", "uniform_bytes", "uniform_psnr", "gain",
)  # fmt: skip
OUTCOME_HEADERS = {
    "budget": "budget (bytes)", "total_bytes": "bytes", "psnr": "psnr_dataset",
    "msssim": "msssim_dataset", "uniform": "uniform at", "uniform_bytes": "uniform bytes",
    "uniform_psnr": "uniform psnr", "gain": "gain",
}  # fmt: skip


def outcome_line(outcome: Outcome, show_version: bool = False) -> dict[str, Any]:
    """An outcome as a flat table line (OUTCOME_COLUMNS): the budget as "bytes at bpp" (by the
    rule) or "bytes given (bpp track)", the gain as "+x.xx dB" (low rate) or "x.x % fewer
    bytes" (transparent); show_version: the codec with its version (a store of several)."""
    budget, totals, uniform = outcome.budget, outcome.totals, outcome.uniform
    if budget is None:
        budget_text = None
    elif budget.nbytes is None:
        budget_text = f"? at {budget.bpp:g} bpp"
    elif budget.rule == "given":
        budget_text = f"{budget.nbytes:,} given ({budget.bpp:g} bpp)"
    else:
        budget_text = f"{budget.nbytes:,} at {budget.bpp:g} bpp"
    gain, saving = outcome.gain_db, outcome.saving_percent
    return {
        "condition": outcome.condition,
        "codec": f"{outcome.codec} [{outcome.codec_version}]" if show_version else outcome.codec,
        "track": outcome.track,
        "budget": budget_text,
        "total_bytes": f"{totals.total_bytes:,}" if totals else None,
        "psnr": totals.psnr if totals else None,
        "msssim": totals.msssim if totals else None,
        "verdict": outcome.verdict,
        "method": outcome.method,
        "uniform": f"{uniform.target:g} bpp" if uniform else None,
        "uniform_bytes": f"{uniform.total_bytes:,}" if uniform else None,
        "uniform_psnr": uniform.psnr if uniform else None,
        "gain": f"{gain:+.3f} dB"
        if gain is not None
        else f"{saving:.1f} % fewer bytes"
        if saving is not None
        else None,
    }


def outcome_table(outcomes: Sequence[Outcome]) -> list[str]:
    """The outcomes as printed lines: the table, the reason of each verdict that has one, and
    each track's limit on the decoder package."""
    from ctc.results import format_table

    several = len({(o.codec, o.codec_version) for o in outcomes}) > len({o.codec for o in outcomes})
    lines = [outcome_line(o, several) for o in outcomes]
    out = format_table(lines, OUTCOME_COLUMNS, OUTCOME_HEADERS).splitlines()
    out += [f"{o.codec} ({o.condition}): {o.verdict}: {o.reason}" for o in outcomes if o.reason]
    limits = {(o.condition, o.max_decoder_bytes) for o in outcomes if o.max_decoder_bytes}
    out += [
        f"{name}: the decoder with its model at most {limit:,} bytes (`ctc clic package` "
        "states the package's size)"
        for name, limit in sorted(limits)
    ]
    return out


def submission_csv(dest: str | Path) -> Path:
    """Where write_submission puts allocation.csv: beside the folder, not in it (the folder's
    files are what the budget counts)."""
    dest = Path(dest)
    return dest.parent / f"{dest.name}.allocation.csv"


def write_submission(outcome: Outcome, run_folder: str | Path, dest: str | Path) -> int:
    """Copy the chosen bitstreams into `dest`, one file per image named after it (image
    kodim01's stream as kodim01.<extension>), as the CLIC decoder expects them, and write
    the choice (image, target, bytes, bpp, PSNR, MS-SSIM, knob value of each) to
    `submission_csv(dest)`, beside the folder. Returns the number of streams copied.

    Raises ValueError (one line) without writing anything when the outcome has no choice, dest
    exists and is not an empty folder, the CSV exists, a chosen row is a frozen anchor
    result (no bitstream in the run), two images would share a file name, or a bitstream is
    missing or not its recorded size.
    """
    dest, run_folder = Path(dest), Path(run_folder)
    if not outcome.chosen:
        raise ValueError(f"{outcome.codec}: no allocation to write ({outcome.verdict}: "
                         f"{outcome.reason})")  # fmt: skip
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ValueError(f"{dest}: exists and is not an empty folder; nothing written")
    listing = submission_csv(dest)
    if listing.exists():
        raise ValueError(f"{listing}: exists; nothing written")
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
        name = f"{row['image']}{PurePosixPath(bitstream).suffix}"
        if name in copies:
            raise ValueError(f"two images would both be written as {name}; nothing written")
        copies[name] = source
    dest.mkdir(parents=True, exist_ok=True)
    for name, source in copies.items():
        shutil.copyfile(source, dest / name)
    _write_allocation_csv(outcome, listing)
    return len(copies)


def _write_allocation_csv(outcome: Outcome, path: Path) -> None:
    columns = ("image", "target_bpp", "bytes", "bpp", "psnr_rgb", "msssim_rgb", "knob_value")
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for row in outcome.chosen:
            writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
