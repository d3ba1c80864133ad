"""Opening an image file: regular files only, a known format, and the size from the header.

Pillow's own decoders are used, but not `Image.open`: the format is recognized from the first
bytes and only that format's decoder is constructed, which reads the header and no pixels. The
size is then checked against the caller's limit before anything is decoded, so Pillow's global
decompression-bomb limit (`Image.MAX_IMAGE_PIXELS`) is neither relied on nor in the way.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from PIL import (
    BmpImagePlugin,
    Image,
    ImageFile,
    JpegImagePlugin,
    PngImagePlugin,
    PpmImagePlugin,
    TiffImagePlugin,
)

from imagefile.policy import ImageFileError, ImageTooLargeError

MAX_PIXELS = 1 << 26  # 67 Mpx: the default limit on width x height (8160 x 6120 fits)
MAX_SIDE = 65536  # the longest side that is ever read, whatever the pixel limit

FORMATS = ("PNG", "PNM", "TIFF", "BMP", "JPEG")

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    *((b"P%d" % n, "PNM") for n in range(1, 7)),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
    (b"BM", "BMP"),
    (b"\xff\xd8\xff", "JPEG"),
)
_DECODERS: dict[str, type[ImageFile.ImageFile]] = {
    "PNG": PngImagePlugin.PngImageFile,
    "PNM": PpmImagePlugin.PpmImageFile,
    "TIFF": TiffImagePlugin.TiffImageFile,
    "BMP": BmpImagePlugin.BmpImageFile,
    "JPEG": JpegImagePlugin.JpegImageFile,
}
_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)
# What Pillow raises on malformed input (found by its own fuzzing), and its bomb check.
_PILLOW_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    OverflowError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)


@contextmanager
def pillow_errors(path: Path) -> Iterator[None]:
    """Turn what Pillow raises on a malformed file into one ImageFileError line."""
    try:
        yield
    except ImageFileError:
        raise
    except _PILLOW_ERRORS as e:
        raise ImageFileError(f"{path}: not a readable image ({e})") from None


def open_regular(path: Path) -> BinaryIO:
    """`path` opened for reading if it is a regular file (after following links).

    Opened without blocking and checked on the open descriptor, so a FIFO, device or socket is
    refused without waiting on it and cannot be swapped in between check and open. Raises
    FileNotFoundError for a missing file and ImageFileError for anything else that fails.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise ImageFileError(f"{path}: cannot open ({e.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a plain file")
        raise ImageFileError(f"{path}: not a regular file ({kind}); give an image file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def sniff(fp: BinaryIO, path: Path, formats: tuple[str, ...]) -> str:
    """The format named by the file's first bytes, if it is one of `formats`."""
    head = fp.read(8)
    fp.seek(0)
    found = next((name for magic, name in _MAGIC if head.startswith(magic)), None)
    if found is None:
        known = ", ".join(FORMATS[:-1]) + " or " + FORMATS[-1]
        raise ImageFileError(f"{path}: not a readable image (not a {known} file)")
    if found not in formats:
        raise ImageFileError(f"{path}: {found} files are not accepted here ({', '.join(formats)})")
    return found


def open_header(fp: BinaryIO, path: Path, fmt: str) -> ImageFile.ImageFile:
    """The Pillow image of format `fmt` with its header read and no pixels decoded."""
    fp.seek(0)
    with pillow_errors(path):
        return _DECODERS[fmt](fp, str(path))


def check_size(path: Path, size: tuple[int, int], max_pixels: int | None, hint: str) -> None:
    """Raise ImageTooLargeError when a side exceeds MAX_SIDE or w x h exceeds `max_pixels`."""
    width, height = size
    if max(width, height) > MAX_SIDE:
        raise ImageTooLargeError(
            f"{path}: {width}x{height} image has a side over {MAX_SIDE} pixels; refused"
        )
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            f"{path}: {width}x{height} image has {width * height} pixels, over the limit of "
            f"{max_pixels}; {hint}"
        )
