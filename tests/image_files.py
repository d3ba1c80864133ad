"""Small image files written byte by byte, for what Pillow cannot write (16-bit colour PNG,
cICP, PNM of any maxval, 16-bit and V5 BMP) or writes only slowly (a huge all-zero PNG)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

ORIENTATION = 0x0112


def png_chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))


def write_png(
    path: Path,
    array: np.ndarray,
    bit_depth: int = 8,
    colour_type: int | None = None,
    chunks: tuple[tuple[bytes, bytes], ...] = (),
) -> Path:
    """A PNG of uint8/uint16 (H, W[, C]) samples at bit depth 8 or 16; `chunks` go before IDAT."""
    h, w = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    if colour_type is None:
        colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    dtype = ">u2" if bit_depth == 16 else "u1"
    raw = b"".join(b"\x00" + array[i].astype(dtype).tobytes() for i in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0)
    body = b"".join(png_chunk(tag, data) for tag, data in chunks)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + body
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )
    return path


def write_zero_png(path: Path, width: int, height: int) -> Path:
    """A valid all-black 8-bit RGB PNG of any size, a few hundred KB for 88 Mpx."""
    deflate = zlib.compressobj(9)
    row = bytes(1 + 3 * width)
    data = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", data)
        + png_chunk(b"IEND", b"")
    )
    return path


def write_pnm(path: Path, array: np.ndarray, maxval: int, plain: bool = False) -> Path:
    """A PGM (H, W) or PPM (H, W, 3) with the given maxval, binary or plain (ASCII)."""
    h, w = array.shape[:2]
    colour = array.ndim == 3
    magic = ("P3" if colour else "P2") if plain else ("P6" if colour else "P5")
    header = f"{magic}\n# written by a test\n{w} {h}\n{maxval}\n".encode()
    if plain:
        data = " ".join(str(int(v)) for v in array.ravel()).encode() + b"\n"
    else:
        data = array.astype(">u2" if maxval > 255 else "u1").tobytes()
    path.write_bytes(header + data)
    return path


def write_bmp(
    path: Path,
    array: np.ndarray,
    bits: int = 24,
    cs_type: bytes = b"BGRs",
    calibration: bytes = bytes(48),
    profile: bytes = b"",
) -> Path:
    """A bottom-up BMP with a BITMAPV5HEADER: uint8 (H, W, 3) at 24 bits, or 16 bits (5-5-5)."""
    h, w = array.shape[:2]
    if bits == 16:
        a = array.astype(np.uint16) >> 3
        px = ((a[..., 0] << 10) | (a[..., 1] << 5) | a[..., 2]).astype("<u2")
        rows = [px[i].tobytes() for i in range(h)]
    else:
        rows = [array[i, :, ::-1].tobytes() for i in range(h)]
    stride = (len(rows[0]) + 3) & ~3
    pixels = b"".join(r.ljust(stride, b"\0") for r in reversed(rows))
    offset = 14 + 124
    profile_offset = 124 + len(pixels) if profile else 0
    info = struct.pack("<IiiHHIIiiII", 124, w, h, 1, bits, 0, len(pixels), 2835, 2835, 0, 0)
    info += bytes(16) + cs_type + calibration
    info += struct.pack("<IIII", 4, profile_offset, len(profile), 0)
    size = offset + len(pixels) + len(profile)
    head = b"BM" + struct.pack("<IHHI", size, 0, 0, offset)
    path.write_bytes(head + info + pixels + profile)
    return path


def exif_orientation(value: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = value
    return exif


def display_profile() -> bytes:
    """A real non-sRGB ICC profile ('Color LCD', an Apple display) from scikit-image's data."""
    import skimage

    path = Path(skimage.__file__).parent / "data" / "color.png"
    with Image.open(path) as im:
        return im.info["icc_profile"]


def srgb_profile() -> bytes:
    """A real sRGB ICC profile ('sRGB IEC61966-2.1', HP's) from scikit-image's astronaut."""
    import skimage

    path = Path(skimage.__file__).parent / "data" / "astronaut.png"
    with Image.open(path) as im:
        return im.info["icc_profile"]
