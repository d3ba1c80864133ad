"""Datasets: a folder of images, scikit-image's bundled photos, or a fetched set such as Kodak.

`resolve_dataset(spec)` takes a known name ("skimage", "kodak"), a folder path, or a manifest
(a .yaml/.yml file: load_manifest). Images are named by file stem (unique within a dataset),
read with ctc.images.load_image, and identified by the sha256 of their pixels, which goes into
the run record. A folder's entries that are not used are named in one DatasetWarning; images
that cannot be read are all named in one DatasetError when the dataset is checked
(`Dataset.checksums`).

A manifest names a test set's classes (FVC's 6K, 4K, 2K and Kodak), the files of each with
the sha256 of their pixels, and where to get them; a user who holds the images points `root`
(or $CTC_DATASET_ROOT) at them. Results and reports map a row to its class by image name and
pixel sha256 (ImageClass.holds), so the classes need not be in the job keys.

    python -m ctc.datasets manifest FOLDER --class A='6k_*.png' --class B='kodim*.png'
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ctc import fetch, yamlfile
from ctc.files import NotASmallFileError
from ctc.images import IMAGE_SUFFIXES, MAX_PIXELS, ImageError, load_image, pixel_sha256

# True colour PNG photos in scikit-image's data folder (not its JPEG-compressed ones).
SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png")


JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif")  # lossy-compressed: not used as originals


class DatasetError(ValueError):
    """A dataset is unknown, missing, empty, has unreadable images (all named), or does not
    match its pinned checksums."""


class ManifestError(DatasetError):
    """A manifest file is unreadable or invalid; the message names the file and the field."""


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
class ImageClass:
    """A class of a test set: its images by name (file stem), each with the sha256 of its
    pixels ("" where not pinned: any pixels)."""

    name: str
    description: str
    images: dict[str, str]

    def holds(self, image: str, sha256: str | None = None) -> bool:
        """Whether the image of this name (and, where both are known, these pixels) is in it."""
        if image not in self.images:
            return False
        pinned = self.images[image]
        return not pinned or not sha256 or pinned == sha256


@dataclass(frozen=True)
class Dataset:
    name: str
    images: tuple[DatasetImage, ...]
    classes: tuple[ImageClass, ...] = field(default=(), compare=False)
    pinned: dict[str, str] = field(default_factory=dict, compare=False)
    """Pixel sha256 by image name that checksums() must find (a manifest's)."""
    source: str = field(default="", compare=False)

    def class_record(self) -> dict[str, Any]:
        """The classes as a run record holds them ({} when none): see classes_from_record."""
        return classes_to_record(self.classes)

    def checksums(self, *, max_pixels: int | None = MAX_PIXELS) -> dict[str, str]:
        """Pixel sha256 of every image, by image name, reading one image at a time.

        Every image is read even after a failure; raises one DatasetError naming each image
        that cannot be used and why.
        """
        sums, problems = {}, []
        for image in self.images:
            pinned = self.pinned.get(image.name)
            if pinned and not image.path.is_file():
                problems.append(f"{image.path.name}: missing from {image.path.parent}")
                continue
            try:
                sums[image.name] = pixel_sha256(image.load(max_pixels=max_pixels))
            except ImageError as e:
                problems.append(str(e))
                continue
            if pinned and sums[image.name] != pinned:
                problems.append(
                    f"{image.path.name}: pixel sha256 {sums[image.name]} is not the "
                    f"manifest's {pinned}"
                )
        if problems:
            subject = f"dataset {self.name!r}"
            if self.source:
                subject += f" (source: {self.source})"
            raise DatasetError(_listing(subject, problems, len(self.images)))
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
    """A dataset by name ("skimage", or a fetchable one such as "kodak"), by folder path, or by
    manifest (a .yaml/.yml file, checked against its pixel checksums: manifest_dataset)."""
    text = str(spec)
    if text == "skimage":
        return skimage_dataset()
    if text in fetch.REMOTES:
        return remote_dataset(fetch.REMOTES[text])
    if Path(text).is_dir():
        return folder_dataset(text)
    if Path(text).suffix.lower() in MANIFEST_SUFFIXES:
        return manifest_dataset(text)
    known = ", ".join(["skimage", *fetch.REMOTES])
    raise DatasetError(
        f"no dataset {text!r}: not a known name ({known}), a folder or a manifest (.yaml)"
    )


# --- manifests: test sets with classes ------------------------------------------------------

MANIFEST_SUFFIXES = (".yaml", ".yml")
ROOT_ENV = "CTC_DATASET_ROOT"  # overrides every manifest's root
MANIFEST_KEYS = ("name", "source", "root", "classes")
CLASS_KEYS = ("description", "images")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Manifest:
    """A test set with classes. files: file name -> pixel sha256, in manifest order; root: the
    folder of the images (the manifest's `root` relative to its own folder)."""

    path: Path
    name: str
    source: str
    root: Path
    classes: tuple[ImageClass, ...]
    files: dict[str, str]


def load_manifest(path: str | Path) -> Manifest:
    """Read and check a manifest file; raises ManifestError (one line: file, field, problem)."""
    path = Path(path)
    try:
        spec = yamlfile.read(path)
    except NotASmallFileError as e:
        raise ManifestError(str(e)) from None
    except OSError as e:
        raise ManifestError(f"{path}: cannot read: {e.strerror or e}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        first = str(e).replace("\n", " ").split("  ")[0]
        raise ManifestError(f"{path}: not YAML: {first}") from None

    def fail(where: str, message: str) -> ManifestError:
        return ManifestError(f"{path}: {where}: {message}")

    if not isinstance(spec, dict):
        raise ManifestError(f"{path}: not a mapping of {', '.join(MANIFEST_KEYS)}")
    unknown = sorted(str(k) for k in spec if k not in MANIFEST_KEYS)
    if unknown:
        raise fail(", ".join(unknown), f"unknown field (known: {', '.join(MANIFEST_KEYS)})")
    for key in ("name", "source", "root"):
        if key in spec and not (isinstance(spec[key], str) and spec[key].strip()):
            raise fail(key, "must be a non-empty string")
    if "name" not in spec:
        raise fail("name", "missing")
    classes_spec = spec.get("classes")
    if not isinstance(classes_spec, dict) or not classes_spec:
        raise fail("classes", "must be a mapping of class names to {description, images}")
    classes, files, stems = [], {}, {}
    for cname, cspec in classes_spec.items():
        where = f"classes.{cname}"
        if not isinstance(cname, str) or not cname.strip():
            raise fail(where, "a class name must be a non-empty string")
        if not isinstance(cspec, dict):
            raise fail(where, "must be a mapping of description, images")
        unknown = sorted(str(k) for k in cspec if k not in CLASS_KEYS)
        if unknown:
            raise fail(f"{where}.{unknown[0]}", f"unknown field (known: {', '.join(CLASS_KEYS)})")
        description = cspec.get("description", "")
        if not isinstance(description, str):
            raise fail(f"{where}.description", "must be a string")
        images = cspec.get("images")
        if not isinstance(images, dict) or not images:
            raise fail(f"{where}.images", "must be a mapping of file names to pixel sha256")
        members = {}
        for fname, digest in images.items():
            at = f"{where}.images.{fname}"
            if not isinstance(fname, str) or Path(fname).name != fname or fname.startswith("."):
                raise fail(at, "must be a file name in the root folder (no folder part)")
            if Path(fname).suffix.lower() not in IMAGE_SUFFIXES:
                raise fail(at, f"not an original image ({'/'.join(IMAGE_SUFFIXES)})")
            if not isinstance(digest, str) or not _SHA256.fullmatch(digest.lower()):
                raise fail(at, "the pixel sha256 must be 64 hex digits (quoted)")
            stem = Path(fname).stem
            if stem in stems:
                raise fail(at, f"image name {stem!r} is already in class {stems[stem]}")
            stems[stem] = cname
            files[fname] = members[stem] = digest.lower()
        classes.append(ImageClass(cname, description, members))
    root = os.environ.get(ROOT_ENV) or spec.get("root") or "."
    return Manifest(
        path=path,
        name=spec["name"].strip(),
        source=spec.get("source", ""),
        root=Path(os.path.normpath(path.parent / root)),
        classes=tuple(classes),
        files=files,
    )


def manifest_dataset(manifest: str | Path | Manifest, root: str | Path | None = None) -> Dataset:
    """The manifest's images in its root folder (or `root`), with its classes and pinned pixel
    checksums.

    The images are read when the dataset is checked (Dataset.checksums, which a run does before
    any job starts, within its max_pixels): one DatasetError then lists every image that is
    missing, unreadable or has other pixels than the manifest's.
    """
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest)
    folder = Path(root) if root is not None else manifest.root
    if not folder.is_dir():
        raise DatasetError(
            f"dataset {manifest.name!r}: no image folder {folder} (set the manifest's root or "
            f"${ROOT_ENV}; get the images from: {manifest.source or 'the source'})"
        )
    dataset = _dataset(manifest.name, [folder / f for f in manifest.files])
    pinned = {Path(f).stem: digest for f, digest in manifest.files.items()}
    return Dataset(dataset.name, dataset.images, manifest.classes, pinned, manifest.source)


def classes_to_record(classes: Sequence[ImageClass]) -> dict[str, Any]:
    """{class: {"description": ..., "images": {image: pixel sha256}}}: what a run record (or
    JSON) holds of a dataset's classes."""
    return {c.name: {"description": c.description, "images": dict(c.images)} for c in classes}


def classes_from_record(record: Mapping[str, Any] | None) -> tuple[ImageClass, ...]:
    """The classes of a run record's "dataset" entry (its "classes", as classes_to_record
    writes them); () when it has none."""
    found = (record or {}).get("classes") or {}
    return tuple(
        ImageClass(str(name), str(spec.get("description", "")), dict(spec.get("images", {})))
        for name, spec in found.items()
    )


def dataset_classes(spec: str | Path) -> tuple[ImageClass, ...]:
    """The classes of a manifest file, read without the images (for results and reports)."""
    return load_manifest(spec).classes


def class_of(classes: Sequence[ImageClass], image: str, sha256: str | None = None) -> str | None:
    """The name of the class that holds the image (with these pixels), None if none does."""
    return next((c.name for c in classes if c.holds(image, sha256)), None)


def write_manifest(
    folder: str | Path,
    classes: Mapping[str, str | Iterable[str]],
    out: str | Path | None = None,
    *,
    name: str | None = None,
    source: str = "",
    descriptions: Mapping[str, str] | None = None,
) -> Path:
    """Write a manifest of `folder`'s images: classes maps a class name to glob pattern(s) of
    file names; every image is read for its pixel sha256. out: default FOLDER/manifest.yaml;
    `root` is written relative to out's folder. Raises ManifestError for a pattern that
    matches no image, or an image matched by two classes."""
    folder = Path(folder)
    out = Path(out) if out else folder / "manifest.yaml"
    names = sorted(
        e.name for e in folder.iterdir() if _skip_reason(e) is None and e.is_file()
    ) if folder.is_dir() else []  # fmt: skip
    taken: dict[str, str] = {}
    spec_classes: dict[str, Any] = {}
    for cname, patterns in classes.items():
        patterns = [patterns] if isinstance(patterns, str) else list(patterns)
        images = {}
        for pattern in patterns:
            matched = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
            if not matched:
                raise ManifestError(f"{folder}: class {cname}: {pattern!r} matches no image")
            for n in matched:
                if taken.get(n, cname) != cname:
                    raise ManifestError(f"{folder}: {n} is in classes {taken[n]} and {cname}")
                taken[n] = cname
                images[n] = pixel_sha256(load_image(folder / n, max_pixels=None))
        spec_classes[cname] = {
            "description": (descriptions or {}).get(cname, cname),
            "images": images,
        }
    spec = {
        "name": name or folder.resolve().name,
        "source": source or f"images of {folder.resolve()}",
        "root": os.path.relpath(folder.resolve(), out.resolve().parent),
        "classes": spec_classes,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    load_manifest(out)  # what it wrote reads back
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m ctc.datasets manifest FOLDER --class NAME=GLOB ...`"""
    parser = argparse.ArgumentParser(prog="python -m ctc.datasets")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("manifest", help="write a dataset manifest of a folder's images")
    p.add_argument("folder", metavar="FOLDER")
    p.add_argument(
        "--class",
        dest="classes",
        action="append",
        required=True,
        metavar="NAME=GLOB",
        help="class and file-name pattern (repeatable)",
    )
    p.add_argument("--name", help="dataset name (default: the folder's name)")
    p.add_argument("--source", default="", help="where to get the images, licence")
    p.add_argument("-o", "--out", help="manifest file (default FOLDER/manifest.yaml)")
    args = parser.parse_args(argv)
    classes: dict[str, list[str]] = {}
    for item in args.classes:
        cname, sep, pattern = item.partition("=")
        if not sep or not cname or not pattern:
            parser.error(f"--class {item!r}: expected NAME=GLOB")
        classes.setdefault(cname, []).append(pattern)
    try:
        out = write_manifest(args.folder, classes, args.out, name=args.name, source=args.source)
    except (DatasetError, ImageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
