"""Decoded samples to one 8-bit grayscale or RGB image: depth, palette and transparency."""

from __future__ import annotations

import numpy as np
from PIL import Image

from imagefile.headers import FileFacts
from imagefile.policy import Notes

_DEEP_GRAY = ("I;16", "I;16B", "I;16L", "I;16N")
_WITH_ALPHA = {"RGBA": "RGB", "LA": "L", "RGBa": "RGB", "La": "L", "PA": "RGB"}


def to_l_or_rgb(im: Image.Image, facts: FileFacts, notes: Notes) -> Image.Image:
    """`im` (decoded) as mode "L" or "RGB" with 8-bit samples, recording every conversion.

    Samples deeper than 8 bits or with a maxval that does not divide 255 are reduced (lossy);
    palettes are expanded (lossless); an alpha channel or tRNS colour key is removed, lossless
    when no pixel is transparent. Raises ImageFileError for modes that are not read at all
    (CMYK, YCbCr, Lab, signed or floating-point samples) and LossyConversionError (see Notes).
    """
    if facts.depth is not None:
        notes.add(facts.depth)
    key = im.info.get("transparency")
    if key is not None and im.mode == "L" and facts.maxval < 255:
        key *= 255 // facts.maxval  # a PNG tRNS key holds the 1-, 2- or 4-bit sample as stored
    if im.mode in _DEEP_GRAY or (im.mode == "I" and facts.format in ("PNG", "PNM")):
        samples = _deep_gray(im, facts)
        mask = None if key is None else samples == key
        gray = _rescale(samples, facts.maxval, 255)
        return _without_key(Image.fromarray(gray.astype(np.uint8)), mask, notes)
    if im.mode in ("P", "PA"):
        has_alpha = im.mode == "PA" or key is not None
        im = im.convert("RGBA" if has_alpha else "RGB")
        notes.lossless("palette", "expanded to RGB")
    if im.mode == "1":
        im = im.convert("L")  # 0 and 255, as is any tRNS key Pillow reads for 1-bit PNGs
    if im.mode in _WITH_ALPHA:
        rgba = im.convert(_WITH_ALPHA[im.mode] + "A")
        transparent = np.asarray(rgba.getchannel("A")) < 255
        return _drop_alpha(rgba.convert(_WITH_ALPHA[im.mode]), transparent, "alpha channel", notes)
    if im.mode not in ("L", "RGB"):
        kind = {"I": "signed or 32-bit integer samples", "F": "floating-point samples"}
        what = kind.get(im.mode, f"colour mode {im.mode}")
        raise notes.refuse(f"{what} not supported; convert the image to 8-bit RGB")
    if key is None:
        return im
    if im.mode == "RGB" and facts.maxval == 65535:
        raise notes.refuse("tRNS colour key of a 16-bit colour PNG not supported")
    samples = np.asarray(im)
    mask = samples == key if im.mode == "L" else (samples == np.asarray(key)).all(axis=-1)
    return _without_key(im, mask, notes)


def _deep_gray(im: Image.Image, facts: FileFacts) -> np.ndarray:
    """Grayscale samples on the file's own scale 0..facts.maxval, as uint32 or uint64."""
    samples = np.asarray(im).astype(np.uint32)
    if facts.min_is_white:  # Pillow inverts 1- to 8-bit TIFF WhiteIsZero samples, not 16-bit
        samples = facts.maxval - samples
    if facts.format == "PNM" and facts.maxval != 65535:
        # Pillow scales PNM samples of maxval > 255 to 0..65535 with rounding: undo it exactly.
        samples = _rescale(samples, 65535, facts.maxval)
    return samples


def _rescale(samples: np.ndarray, src_max: int, dst_max: int) -> np.ndarray:
    """round(v * dst_max / src_max) in exact integer arithmetic, halves to even (as Python's
    round and Pillow's own PNM scaling)."""
    wide = samples.astype(np.uint64 if src_max * dst_max >= 1 << 31 else np.uint32)
    quotient, remainder = np.divmod(wide * dst_max, src_max)
    up = (2 * remainder > src_max) | ((2 * remainder == src_max) & (quotient % 2 == 1))
    return quotient + up


def _without_key(im: Image.Image, mask: np.ndarray | None, notes: Notes) -> Image.Image:
    return im if mask is None else _drop_alpha(im, mask, "tRNS colour key", notes)


def _drop_alpha(im: Image.Image, transparent: np.ndarray, source: str, notes: Notes) -> Image.Image:
    count = int(np.count_nonzero(transparent))
    if count == 0:
        notes.lossless(f"{source} (fully opaque)", "removed")
    else:
        notes.lossy(
            f"transparency ({count} of {transparent.size} pixels, {source})",
            "dropped (colours kept as stored, not composited)",
        )
    return im
