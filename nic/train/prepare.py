"""Pack a training set small enough to travel with a GPU job: detailed crops at full resolution.

A device job carries at most 64 MiB, while a folder of a few hundred training photos takes
hundreds of MB. Shrinking whole photos and re-compressing them as JPEG drops their detail and adds
artefacts that the model then learns. The pack keeps square crops instead, at the photos' own
resolution, stored as lossless WebP (10.5 bits per pixel on these crops, a third less than PNG's
15.8: `python benchmarks/train_data.py formats`). Each crop sits where its photo has the most
detail, as Toderici et al. trained on the patches that PNG compressed worst ("Full Resolution Image
Compression with Recurrent Neural Networks", CVPR 2017): the window of largest mean luma gradient,
measured at half resolution so that pixel noise counts less than structure. Crops are added one
per photo in turn (then a second per photo, ...) until the byte budget is spent.

A fixed share of the photos, chosen by a hash of the file name, is held out: one crop of each
goes to `holdout/`, nothing of them to `train/`, so that a run can watch for overfitting.

JPEG photos of quality about 90 or below (a luma DC quantiser of 3 or more) are halved first
(Lanczos). Measured on 40 PNG photos (`python benchmarks/train_data.py jpeg`), JPEG 4:2:0 is
34.6 dB PSNR from the original at quality 75 and 38.4 dB at quality 90: an error as large as the
codec's own at its highest rate point (36.6 dB on Kodak), or within 2 dB of it, which that rate
point would spend bits to reproduce. Halving both puts them 39.1 and 42.3 dB apart. Quality 95
(40.7 dB) is kept at full resolution.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from nic.train.data import list_images, read_training_image

HALVED_JPEG_DC_QUANTISER = 3
"""JPEG photos whose luma DC quantiser is at least this are halved before cropping."""
GRID = 16
"""Crop corners lie on this grid (pixels)."""


@dataclass(frozen=True)
class PackSummary:
    """What `prepare_training_set` wrote: photo and crop counts, bytes, pixels, seconds taken."""

    photos: int
    """Photos found under the sources."""
    too_small: int
    """Photos read and left out: shorter than the crop side (after halving)."""
    held_out: int
    """Photos of the holdout split (one crop each in holdout/)."""
    train_photos: int
    """Train photos with at least one crop in train/ (the others did not fit the budget)."""
    train_crops: int
    holdout_crops: int
    halved: int
    """JPEG photos halved before cropping."""
    bytes: int
    """Bytes of all crops written."""
    pixels: int
    """Pixels of all crops written."""
    seconds: float


def is_held_out(name: str, percent: float) -> bool:
    """Whether the photo with file name `name` (no folder) belongs to the holdout split: the
    first 8 bytes of its sha256 as an integer, modulo 10000, are below 100 * percent. The same
    on every machine and whatever folder the photo sits in."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10000 < round(100 * percent)


def detail_windows(pixels: np.ndarray, side: int) -> list[tuple[int, int]]:
    """Top-left corners (row, column) of non-overlapping side x side windows of `pixels`
    (uint8 H x W x 3), most detailed first, until no window fits beside those taken.

    Detail is the mean absolute horizontal plus vertical luma difference (BT.601 weights) of
    the image halved by 2x2 averaging; corners lie on a GRID-pixel grid; ties go to the
    first corner in row-major order. An image smaller than the window gives none.
    """
    h, w = pixels.shape[:2]
    if min(h, w) < side:
        return []
    luma = pixels[: h // 2 * 2, : w // 2 * 2].astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
    half = luma.reshape(h // 2, 2, w // 2, 2).mean((1, 3))
    grad = np.zeros_like(half)
    grad[:, 1:] += np.abs(np.diff(half, axis=1))
    grad[1:, :] += np.abs(np.diff(half, axis=0))
    total = np.zeros((grad.shape[0] + 1, grad.shape[1] + 1))
    total[1:, 1:] = grad.cumsum(0).cumsum(1)
    tops, lefts = np.arange(0, h - side + 1, GRID), np.arange(0, w - side + 1, GRID)
    t, left, s = tops[:, None] // 2, lefts[None, :] // 2, side // 2
    score = total[t + s, left + s] - total[t, left + s] - total[t + s, left] + total[t, left]
    windows = []
    while np.isfinite(score).any():
        i, j = np.unravel_index(np.argmax(score), score.shape)
        windows.append((int(tops[i]), int(lefts[j])))
        near_rows = np.abs(tops - tops[i]) < side
        near_cols = np.abs(lefts - lefts[j]) < side
        score[np.ix_(near_rows, near_cols)] = -np.inf
    return windows


def _load(path: Path) -> tuple[np.ndarray, bool]:
    """A photo's pixels, halved (Lanczos) when it is a JPEG of quality about 90 or below; and
    whether it was."""
    pixels = read_training_image(path)
    try:
        with Image.open(path, formats=["JPEG"]) as im:
            halve = im.quantization[0][0] >= HALVED_JPEG_DC_QUANTISER
    except UnidentifiedImageError:
        halve = False
    if halve:
        h, w = pixels.shape[:2]
        im = Image.fromarray(pixels).resize((w // 2, h // 2), Image.Resampling.LANCZOS)
        pixels = np.asarray(im)
    return pixels, halve


def _empty_folder(folder: Path) -> None:
    """Create `folder`, refusing one that already holds files (an earlier pack)."""
    if folder.exists() and any(folder.iterdir()):
        raise ValueError(f"{folder} already holds files; remove it or choose another --output")
    folder.mkdir(parents=True, exist_ok=True)


def prepare_training_set(
    sources: list[str | Path],
    output: str | Path,
    budget_mib: float = 38.0,
    crop: int = 256,
    holdout_percent: float = 5.0,
) -> PackSummary:
    """Pack the photos under `sources` into `output`/train/ and `output`/holdout/ as lossless
    WebP crops of crop x crop pixels, at most `budget_mib` MiB of crops in all, and list every
    crop with its photo and position in `output`/pack.json.

    Holdout photos (is_held_out with `holdout_percent`) give one crop each, written first; then
    each train photo in turn gives its most detailed crop, then its second (detail_windows), and
    so on, until the next crop would pass the budget or no photo has another. The photo order is
    that of the sha256 of the file names, so a budget that runs out leaves out an unbiased
    subset. Raises ValueError for a budget that is not a positive number, a crop side that is
    not a multiple of 64, a holdout share outside [0, 50] %, an output folder inside a source
    or whose train/ or holdout/ already hold files, and for photos that cannot be read
    (imagefile's errors, OSError).
    """
    if not (isinstance(budget_mib, int | float) and math.isfinite(budget_mib) and budget_mib > 0):
        raise ValueError(f"the budget must be a number of MiB > 0, not {budget_mib!r}")
    if crop < 64 or crop % 64:
        raise ValueError(f"the crop side must be a multiple of 64 pixels, not {crop}")
    if not 0 <= holdout_percent <= 50:
        raise ValueError(f"the holdout share must be from 0 to 50 %, not {holdout_percent}")
    start = time.monotonic()
    out = Path(output).resolve()
    for source in map(Path, sources):
        if source.is_dir() and out.is_relative_to(source.resolve()):
            raise ValueError(f"{output} lies inside {source}: its crops would be packed again")
    files = list_images(list(sources))
    for folder in (out / "train", out / "holdout"):
        _empty_folder(folder)

    def order(f: Path) -> bytes:
        return hashlib.sha256(f.name.encode()).digest()

    def relative(f: Path) -> str:
        """The photo's path below the source folder it was found in (POSIX)."""
        for source in map(Path, sources):
            if source.is_dir() and f.is_relative_to(source):
                return f.relative_to(source).as_posix()
        return f.name

    holdout = sorted((f for f in files if is_held_out(f.name, holdout_percent)), key=order)
    train = sorted((f for f in files if not is_held_out(f.name, holdout_percent)), key=order)
    windows: dict[Path, list[tuple[int, int]]] = {}
    halved: set[Path] = set()
    records: list[dict] = []
    budget = budget_mib * 2**20
    spent = 0

    def add(photo: Path, round_: int, folder: str) -> bool:
        """Write the photo's crop of this round; False when it would pass the budget."""
        nonlocal spent
        pixels, halve = _load(photo)
        if photo not in windows:
            windows[photo] = detail_windows(pixels, crop)
            if halve:
                halved.add(photo)
        if round_ >= len(windows[photo]):
            return True
        top, left = windows[photo][round_]
        tile = Image.fromarray(np.ascontiguousarray(pixels[top : top + crop, left : left + crop]))
        name = relative(photo)
        tag = hashlib.sha256(str(photo).encode()).hexdigest()[:8]  # apart from its namesakes
        dst = out / folder / f"{tag}-{photo.stem}-{top}-{left}.webp"
        tile.save(dst, "WEBP", lossless=True, quality=100, method=4, exact=True)
        size = dst.stat().st_size
        if spent + size > budget:
            dst.unlink()
            return False
        spent += size
        records.append(
            {
                "file": f"{folder}/{dst.name}",
                "photo": name,
                "top": top,
                "left": left,
                "halved": halve,
            }
        )
        return True

    full = not all(add(f, 0, "holdout") for f in holdout)
    round_ = 0
    while not full:
        due = [f for f in train if round_ == 0 or len(windows[f]) > round_]
        if not due:
            break
        full = not all(add(f, round_, "train") for f in due)
        round_ += 1
    train_crops = [r for r in records if r["file"].startswith("train/")]
    summary = PackSummary(
        photos=len(files),
        too_small=sum(1 for f in windows if not windows[f]),
        held_out=len(holdout),
        train_photos=len({r["photo"] for r in train_crops}),
        train_crops=len(train_crops),
        holdout_crops=len(records) - len(train_crops),
        halved=len(halved),
        bytes=spent,
        pixels=len(records) * crop * crop,
        seconds=time.monotonic() - start,
    )
    settings = {"budget_mib": budget_mib, "crop": crop, "holdout_percent": holdout_percent}
    manifest = {"settings": settings, "summary": asdict(summary), "crops": records}
    (out / "pack.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return summary
