"""Reading one image file as 8-bit sRGB pixels, every conversion recorded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ImageFile

from imagefile.colour import to_srgb
from imagefile.headers import file_facts
from imagefile.policy import ImageFileError, Note, Notes
from imagefile.samples import to_l_or_rgb
from imagefile.source import (
    FORMATS,
    MAX_PIXELS,
    check_size,
    open_header,
    open_regular,
    pillow_errors,
    sniff,
)

_ORIENTATIONS: dict[int, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    2: ("mirrored left-right", lambda a: a[:, ::-1]),
    3: ("rotated 180°", lambda a: a[::-1, ::-1]),
    4: ("mirrored top-bottom", lambda a: a[::-1]),
    5: ("transposed", lambda a: a.transpose(1, 0, 2)),
    6: ("rotated 90° clockwise", lambda a: np.rot90(a, -1)),
    7: ("transversed", lambda a: np.rot90(a, 2).transpose(1, 0, 2)),
    8: ("rotated 90° counter-clockwise", lambda a: np.rot90(a, 1)),
}
_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class Decoded:
    """An image read from a file: uint8 (H, W, 3) sRGB pixels, and the conversions made."""

    pixels: np.ndarray
    notes: tuple[Note, ...]


def read_rgb8(
    path: str | Path,
    *,
    allow_lossy: bool,
    max_pixels: int | None = MAX_PIXELS,
    formats: tuple[str, ...] = FORMATS,
    limit_hint: str = "raise max_pixels to read it",
) -> Decoded:
    """Read `path` as uint8 (H, W, 3) sRGB pixels (see the package docstring for the rules).

    allow_lossy: make lossy conversions (recorded as lossy notes) instead of raising
    LossyConversionError. max_pixels: the most width x height pixels read, None for no limit;
    each side is at most MAX_SIDE either way. formats: the accepted subset of FORMATS.
    limit_hint: how to raise the limit, for the size error.
    Raises FileNotFoundError, ImageTooLargeError (from the header, before any decoding),
    LossyConversionError, and ImageFileError for anything else unreadable or refused.
    """
    path = Path(path)
    notes = Notes(path, allow_lossy)
    with open_regular(path) as fp, _read_errors(path):
        fmt = sniff(fp, path, formats)
        im = open_header(fp, path, fmt)
        check_size(path, im.size, max_pixels, limit_hint)
        with pillow_errors(path):
            facts = file_facts(fmt, fp, im, path)
            if getattr(im, "is_animated", False):
                raise notes.refuse("has several frames or pages; give a single image")
            stored = _tiff_orientation(im)
            im.load()
            pending = im.getexif().get(_ORIENTATION_TAG)
            im = to_srgb(to_l_or_rgb(im, facts, notes), im.info, facts, notes)
            pixels = np.array(im, dtype=np.uint8)
    orientation = pending if pending in _ORIENTATIONS else stored
    if orientation in _ORIENTATIONS:
        done, turn = _ORIENTATIONS[orientation]
        notes.lossless(f"EXIF orientation {orientation}", f"applied ({done})")
        if pending in _ORIENTATIONS:
            pixels = turn(pixels)
    return Decoded(np.ascontiguousarray(pixels), tuple(notes.items))


@contextmanager
def _read_errors(path: Path) -> Iterator[None]:
    """An error of the file system while reading (EIO, a file cut short under us) as one
    ImageFileError line naming the file."""
    try:
        yield
    except OSError as e:
        raise ImageFileError(f"{path}: cannot read ({e.strerror or e})") from None


def _tiff_orientation(im: ImageFile.ImageFile) -> int | None:
    """A TIFF's Orientation tag before loading (Pillow may apply and remove it on load)."""
    tags = getattr(im, "tag_v2", None)
    return None if tags is None else tags.get(_ORIENTATION_TAG)
