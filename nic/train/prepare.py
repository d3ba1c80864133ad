"""Pack a training set small enough to travel with a GPU job.

A device job carries at most 64 MiB with it, while a few hundred full-size photos take hundreds of
MB. Downscaling every photo so that its short side is at most `short_side` (Lanczos, which also
removes camera noise, as the CLIC and JPEG AI training recipes do) and storing it as high-quality
JPEG brings 737 photos to about 40 MB. The patch sampler downscales further at random.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image

import imagefile
from nic.train.data import list_images


def prepare_training_set(
    sources: list[str | Path],
    output: str | Path,
    short_side: int = 384,
    quality: int = 90,
) -> tuple[int, int]:
    """Write a downscaled JPEG copy of every image under `sources`; returns (images, bytes).

    Names are prefixed with a hash of the source path, so files of the same name from different
    folders do not collide; running it again overwrites the same files.
    """
    if short_side < 64:
        raise ValueError("short_side must be at least 64")
    if not 1 <= quality <= 100:
        raise ValueError("quality must be in 1..100")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    count = total = 0
    for src in list_images(list(sources)):
        rgb = Image.fromarray(imagefile.read_rgb8(src, allow_lossy=True).pixels)
        w, h = rgb.size
        scale = short_side / min(w, h)
        if scale < 1:
            rgb = rgb.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS)
        tag = hashlib.sha256(str(src.resolve()).encode()).hexdigest()[:8]
        dst = out / f"{tag}-{src.stem}.jpg"
        rgb.save(dst, quality=quality, subsampling=0, optimize=True)
        count += 1
        total += dst.stat().st_size
    return count, total
