"""What the samples' colours mean: embedded ICC profiles and other colour-space declarations.

The result is always sRGB. An ICC profile (PNG iCCP, JPEG APP2, TIFF tag 34675, BMP V5
embedded) that maps the 8-bit values to sRGB within one level is sRGB and nothing is done;
any other is applied with LittleCMS (perceptual intent), which is a lossy conversion. Colour
declarations that cannot be applied are refused whatever the policy: a PNG cICP other than
sRGB, a PNG gAMA other than 1/2.2 or cHRM other than the sRGB primaries (when there is no
iCCP or sRGB chunk), a linked or calibrated BMP colour space, and profiles that are unreadable
or for another colour space than the image's.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image

from imagefile.headers import FileFacts
from imagefile.policy import ImageFileError, Notes

_SRGB_CICP = (1, 13, 0, 1)  # BT.709 primaries, sRGB transfer, RGB, full range
_SRGB_CHROMATICITY = (0.3127, 0.3290, 0.64, 0.33, 0.30, 0.60, 0.15, 0.06)
_FIX = "convert the image to sRGB"


def to_srgb(im: Image.Image, info: dict[str, Any], facts: FileFacts, notes: Notes) -> Image.Image:
    """`im` (mode "L" or "RGB", 8-bit) as RGB sRGB; grayscale is replicated (lossless).

    info: the decoded file's Pillow `info` (profile, PNG gAMA, cHRM and sRGB chunks).
    """
    if facts.cicp is not None:
        if facts.cicp != _SRGB_CICP:
            raise notes.refuse(f"PNG cICP colour description {facts.cicp} is not sRGB; {_FIX}")
    elif facts.icc_profile or info.get("icc_profile"):
        im = _apply_profile(im, facts.icc_profile or info["icc_profile"], notes)
    elif facts.format == "PNG" and "srgb" not in info:
        _check_png_colour(info, notes)
    if facts.colour_space is not None:
        raise notes.refuse(f"{facts.colour_space} is not supported; {_FIX}")
    if im.mode == "L":
        notes.lossless("grayscale", "replicated to RGB")
        im = im.convert("RGB")
    return im


def _check_png_colour(info: dict[str, Any], notes: Notes) -> None:
    gamma = info.get("gamma")
    if gamma is not None and abs(gamma * 2.2 - 1) > 0.02:
        raise notes.refuse(f"PNG gAMA {gamma:g} is not sRGB's 1/2.2; {_FIX}")
    chromaticity = info.get("chromaticity")
    if chromaticity is not None:
        distance = max(abs(a - b) for a, b in zip(chromaticity, _SRGB_CHROMATICITY, strict=True))
        if distance > 0.01:
            raise notes.refuse(f"PNG cHRM {chromaticity} is not the sRGB primaries; {_FIX}")


def _apply_profile(im: Image.Image, icc: bytes, notes: Notes) -> Image.Image:
    try:
        from PIL import ImageCms
    except ImportError:
        raise notes.refuse(f"has a colour profile and Pillow lacks LittleCMS; {_FIX}") from None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = profile.profile.xcolor_space.strip()
        if space != {"L": "GRAY", "RGB": "RGB"}[im.mode]:
            raise notes.refuse(f"colour profile is for {space}, the image is {im.mode}; {_FIX}")
        transform = ImageCms.buildTransform(
            profile, _srgb(), im.mode, "RGB", ImageCms.Intent.PERCEPTUAL
        )
        if _is_identity(transform, im.mode):
            return im
        name = profile.profile.profile_description or "unnamed"
        notes.lossy(f"colour profile {name!r} (not sRGB)", "converted to sRGB (perceptual intent)")
        return ImageCms.applyTransform(im, transform)
    except ImageFileError:
        raise
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError) as e:
        raise notes.refuse(f"unreadable colour profile ({e}); {_FIX}") from None


@lru_cache(maxsize=1)
def _srgb() -> Any:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _is_identity(transform: Any, mode: str) -> bool:
    """Whether `transform` to sRGB moves no test colour by more than one level."""
    from PIL import ImageCms

    levels = np.arange(256, dtype=np.uint8)
    if mode == "L":
        grid = levels[None, :]
        expected = np.repeat(grid[..., None], 3, axis=-1)
    else:
        steps = np.arange(0, 256, 15, dtype=np.uint8)
        cube = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), axis=-1).reshape(-1, 3)
        ramps = np.concatenate([np.eye(3, dtype=np.uint8) * v for v in levels])
        grid = np.concatenate([cube, ramps, np.repeat(levels[:, None], 3, axis=1)])[None]
        expected = grid
    out = np.asarray(ImageCms.applyTransform(Image.fromarray(grid), transform))
    return int(np.abs(out.astype(int) - expected.astype(int)).max()) <= 1
