"""Datasets: a folder of images, scikit-image's bundled photos, or a fetched set such as Kodak.

`resolve_dataset(spec)` takes a known name ("skimage", "kodak") or a folder path. Images are
named by file stem (unique within a dataset), read with ctc.images.load_image, and identified
by the sha256 of their pixels, which goes into the run record.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctc import fetch
from ctc.images import IMAGE_SUFFIXES, load_image, pixel_sha256

# True colour PNG photos in scikit-image's data folder (not its JPEG-compressed ones).
SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png")


class DatasetError(ValueError):
    """A dataset is unknown, missing, empty, or does not match its pinned checksums."""


@dataclass(frozen=True)
class DatasetImage:
    name: str
    path: Path

    def load(self) -> np.ndarray:
        return load_image(self.path)


@dataclass(frozen=True)
class Dataset:
    name: str
    images: tuple[DatasetImage, ...]

    def checksums(self) -> dict[str, str]:
        """Pixel sha256 of every image, by image name."""
        return {im.name: pixel_sha256(im.load()) for im in self.images}


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
    """Every image file directly in `folder` (.png, .ppm, .pnm, .bmp, .tif), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"no dataset folder {folder}")
    paths = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return _dataset(folder.name or str(folder), paths)


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
    for image in dataset.images:
        problem = remote.check(image.path.name, image.load())
        if problem:
            raise DatasetError(f"dataset {remote.name!r}: {problem}; fetch it again")
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
