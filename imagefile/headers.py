"""What a file's header says about its samples and colours, where Pillow does not keep it.

The sample depth always comes from the file (PNG IHDR bit depth, PNM maxval, TIFF
BitsPerSample and ColorMap, BMP bits per pixel), never from the sample values.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import ImageFile

from imagefile.policy import ImageFileError, Note

_ROUNDED_16 = Note("16-bit samples", "rounded to 8 bits (round(v * 255 / 65535))", lossy=True)
_HIGH_BYTE_16 = Note("16-bit samples", "reduced to 8 bits (high byte kept)", lossy=True)
_PNM_TOKEN = re.compile(rb"(?:\s+|#[^\r\n]*)*(\d+)")
_BMP_SRGB = {b"BGRs", b" niW"}  # LCS_sRGB, LCS_WINDOWS_COLOR_SPACE, stored little-endian
_BMP_LINKED, _BMP_EMBEDDED = b"KNIL", b"DEBM"
_MAX_PNG_CHUNKS = 4096  # chunks scanned before the image data


@dataclass(frozen=True)
class FileFacts:
    """Header facts of one file.

    maxval: the largest value a stored colour sample can take (255 for 8 bits, 65535 for 16, the
    PNM maxval; for palette images, that of the palette entries). depth: the lossy reduction to
    8 bits that reading makes, if any. cicp: a PNG cICP chunk (primaries, transfer, matrix,
    full range). icc_profile: a BMP's embedded profile (Pillow keeps the others in `info`).
    colour_space: a non-sRGB colour space declared other than by a profile, in words.
    min_is_white: TIFF WhiteIsZero grayscale (0 is white).
    """

    format: str
    maxval: int = 255
    depth: Note | None = None
    cicp: tuple[int, ...] | None = None
    icc_profile: bytes | None = None
    colour_space: str | None = None
    min_is_white: bool = False


def file_facts(fmt: str, fp: BinaryIO, im: ImageFile.ImageFile, path: Path) -> FileFacts:
    """The header facts of an opened file (`im`: its Pillow image, header read)."""
    fp.seek(0)
    if fmt == "PNG":
        return _png(fp)
    if fmt == "PNM":
        return _pnm(fp, path)
    if fmt == "TIFF":
        return _tiff(im)
    if fmt == "BMP":
        return _bmp(fp)
    return FileFacts(fmt)


def _png(fp: BinaryIO) -> FileFacts:
    head = fp.read(33)  # signature, IHDR length and type, IHDR body, CRC
    depth, colour_type = head[24], head[25]
    cicp = None
    for _ in range(_MAX_PNG_CHUNKS):
        chunk = fp.read(8)
        if len(chunk) < 8:
            break
        length, tag = struct.unpack(">I4s", chunk)
        if tag in (b"IDAT", b"IEND"):
            break
        if tag == b"cICP" and length == 4:
            cicp = tuple(fp.read(4))
            length = 0
        fp.seek(length + 4, 1)
    if depth == 16:
        note = _ROUNDED_16 if colour_type == 0 else _HIGH_BYTE_16
        return FileFacts("PNG", 65535, note, cicp)
    return FileFacts("PNG", 255 if colour_type == 3 else (1 << depth) - 1, None, cicp)


def _pnm(fp: BinaryIO, path: Path) -> FileFacts:
    head = fp.read(4096)
    if head[:2] in (b"P1", b"P4"):
        return FileFacts("PNM", 1)
    values, pos = [], 2
    for _ in range(3):  # width, height, maxval
        match = _PNM_TOKEN.match(head, pos)
        if match is None:
            raise ImageFileError(f"{path}: not a readable image (PNM header unreadable)")
        values.append(int(match[1]))
        pos = match.end()
    maxval = values[2]
    if 255 % maxval == 0:  # 1, 3, 5, 15, 17, 51, 85, 255: scaled to 8 bits exactly
        return FileFacts("PNM", maxval)
    note = Note(
        f"{maxval.bit_length()}-bit samples (PNM maxval {maxval})",
        f"scaled to 8 bits (round(v * 255 / {maxval}))",
        lossy=True,
    )
    return FileFacts("PNM", maxval, note)


def _tiff(im: ImageFile.ImageFile) -> FileFacts:
    tags = im.tag_v2  # type: ignore[attr-defined]
    if tags.get(262) == 3:  # palette: ColorMap entries are 16-bit, Pillow keeps the high byte
        if any(v % 257 for v in tags.get(320, ())):
            note = Note("16-bit TIFF palette entries", "reduced to 8 bits (high byte kept)", True)
            return FileFacts("TIFF", 65535, note)
        return FileFacts("TIFF", 255)
    bits = max(tags.get(258, (1,)))
    if bits == 16:
        gray = tags.get(277, 1) == 1
        note = _ROUNDED_16 if gray else _HIGH_BYTE_16
        return FileFacts("TIFF", 65535, note, min_is_white=tags.get(262) == 0)
    return FileFacts("TIFF", (1 << bits) - 1)


def _bmp(fp: BinaryIO) -> FileFacts:
    head = fp.read(14 + 124)
    header_size = struct.unpack("<I", head[14:18])[0]
    bits = struct.unpack("<H", head[24:26] if header_size == 12 else head[28:30])[0]
    icc, colour_space = None, None
    if header_size in (108, 124):
        cs_type, calibration = head[70:74], head[74:122]
        if cs_type == _BMP_EMBEDDED and header_size == 124:
            offset, size = struct.unpack("<II", head[126:134])
            fp.seek(14 + offset)
            icc = fp.read(min(size, 1 << 24))
        elif cs_type == _BMP_LINKED:
            colour_space = "a linked (external) BMP colour profile"
        elif cs_type not in _BMP_SRGB and any(calibration):
            colour_space = "a calibrated BMP colour space (endpoints and gamma)"
    if bits == 16:
        note = Note("16-bit BMP samples (5 or 6 bits each)", "scaled to 8 bits", lossy=True)
        return FileFacts("BMP", 31, note, icc_profile=icc, colour_space=colour_space)
    return FileFacts("BMP", 255, icc_profile=icc, colour_space=colour_space)
