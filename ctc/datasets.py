"""Datasets: a folder of images, scikit-image's bundled photos, or a fetched set such as Kodak.

`resolve_dataset(spec)` takes a known name ("skimage", "kodak") or a folder path. Images are
named by file stem (unique within a dataset), read with ctc.images.load_image, and identified
by the sha256 of their pixels, which goes into the run record. A folder's entries that are not
used are named in one DatasetWarning; images that cannot be read are all named in one
DatasetError when the dataset is checked (`Dataset.checksums`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctc import fetch
from ctc.images import IMAGE_SUFFIXES, MAX_PIXELS, ImageError, load_image, pixel_sha256

# True colour PNG photos in scikit-image's data folder (not its JPEG-compressed ones).
SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png")


JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif")  # lossy-compressed: not used as originals


class DatasetError(ValueError):
    """A dataset is unknown, missing, empty, has unreadable images (all named), or does not
    match its pinned checksums."""


class DatasetWarning(UserWarning):
    """Entries of a dataset folder that are not used as images (all named in one message)."""


@dataclass(frozen=True)
class DatasetImage:
    name: str
    path: Path

    def load(self, *, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
        """The image as uint8 (H, W, 3) (ctc.images.load_image); raises ImageError."""
        return load_image(self.path, max_pixels=max_pixels)


@dataclass(frozen=True)
class Dataset:
    name: str
    images: tuple[DatasetImage, ...]

    def checksums(self, *, max_pixels: int | None = MAX_PIXELS) -> dict[str, str]:
        """Pixel sha256 of every image, by image name, reading one image at a time.

        Every image is read even after a failure; raises one DatasetError naming each image
        that cannot be used and why.
        """
        sums, problems = {}, []
        for image in self.images:
            try:
                sums[image.name] = pixel_sha256(image.load(max_pixels=max_pixels))
            except ImageError as e:
                problems.append(str(e))
        if problems:
            raise DatasetError(_listing(f"dataset {self.name!r}", problems, len(self.images)))
        return sums


def _listing(subject: str, problems: list[str], total: int) -> str:
    lines = "".join("\n  " + p.replace("\n", "\\n") for p in problems)  # one line each
    return f"{subject}: {len(problems)} of {total} images cannot be used:{lines}"


def data_home() -> Path:
    """Where fetched datasets live: $CTC_DATA_DIR, else the user's cache folder."""
    if os.environ.get("CTC_DATA_DIR"):
        return Path(os.environ["CTC_DATA_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "nic-ctc" / "datasets"


def _dataset(name: str, paths: list[Path]) -> Dataset:
    if not paths:
        raise DatasetError(f"dataset {name!r} has no images")
    by_stem: dict[str, Path] = {}
    for p in sorted(paths):
        if p.stem in by_stem:
            raise DatasetError(
                f"dataset {name!r}: two images named {p.stem!r} ({by_stem[p.stem]}, {p})"
            )
        by_stem[p.stem] = p
    return Dataset(name, tuple(DatasetImage(s, p) for s, p in by_stem.items()))


def folder_dataset(folder: str | Path) -> Dataset:
    """Every entry directly in `folder` named like an original (IMAGE_SUFFIXES), by name.

    Entries so named are images even when they are not regular files, so that checking the
    dataset names them; hidden entries, JPEG files and anything else are skipped and named in
    one DatasetWarning.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"no dataset folder {folder}")
    name = folder.name or str(folder)
    paths, skipped = [], []
    for entry in sorted(folder.iterdir()):
        reason = _skip_reason(entry)
        if reason is None:
            paths.append(entry)
        else:
            skipped.append(f"{entry.name} ({reason})")
    if skipped:
        warnings.warn(
            f"dataset {name!r}: skipping in {folder}: {', '.join(skipped)}",
            DatasetWarning,
            stacklevel=2,
        )
    return _dataset(name, paths)


def _skip_reason(entry: Path) -> str | None:
    suffix = entry.suffix.lower()
    if entry.name.startswith("."):
        return "hidden"
    if suffix in IMAGE_SUFFIXES:
        return None
    if suffix in JPEG_SUFFIXES:
        return "JPEG: lossy-compressed originals are not used"
    if entry.is_dir():
        return "a folder"
    return "not " + "/".join(IMAGE_SUFFIXES)


def skimage_dataset() -> Dataset:
    """The colour photos that ship inside the scikit-image wheel (no download)."""
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    return _dataset("skimage", [folder / f for f in SKIMAGE_PHOTOS])


def remote_dataset(remote: fetch.RemoteDataset, folder: Path | None = None) -> Dataset:
    """A fetched dataset, checked against its pinned pixel checksums."""
    folder = folder or data_home() / remote.name
    missing = [f for f in remote.files if not (folder / f).is_file()]
    if missing:
        raise DatasetError(
            f"dataset {remote.name!r} is not (fully) in {folder}: "
            f"run `ctc dataset fetch {remote.name}` first"
        )
    dataset = _dataset(remote.name, [folder / f for f in remote.files])
    problems = []
    for image in dataset.images:
        try:
            problem = remote.check(image.path.name, image.load())
        except ImageError as e:
            problem = str(e)
        if problem:
            problems.append(problem)
    if problems:
        subject = f"dataset {remote.name!r} (fetch it again)"
        raise DatasetError(_listing(subject, problems, len(dataset.images)))
    return dataset


def resolve_dataset(spec: str | Path) -> Dataset:
    """A dataset by name ("skimage", or a fetchable one such as "kodak") or by folder path."""
    text = str(spec)
    if text == "skimage":
        return skimage_dataset()
    if text in fetch.REMOTES:
        return remote_dataset(fetch.REMOTES[text])
    if Path(text).is_dir():
        return folder_dataset(text)
    known = ", ".join(["skimage", *fetch.REMOTES])
    raise DatasetError(f"no dataset {text!r}: not a known name ({known}) and not a folder")
