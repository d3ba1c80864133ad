"""Training patches: random crops with random downscaling, flips and quarter-turn rotations.

Downscaling before cropping (as in the CLIC and JPEG AI training recipes) removes camera noise and
demosaicing artefacts and shows the model more structure per patch.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

import imagefile

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".pnm", ".bmp", ".tif", ".tiff"}
"""What imagefile reads (PNG, JPEG, PNM, BMP, TIFF), by file suffix."""


def list_images(paths: list[str | Path]) -> list[Path]:
    """All image files under the given files or folders, sorted for reproducibility."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += [f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES]
        elif p.suffix.lower() in IMAGE_SUFFIXES:
            found.append(p)
        else:
            raise FileNotFoundError(f"training data path not found or not an image: {p}")
    if not found:
        raise FileNotFoundError(f"no training images under {', '.join(map(str, paths))}")
    return sorted(found)


class PatchSampler:
    """Holds the decoded images in memory and draws augmented square patches from them.

    With `device` a GPU, the images live in GPU memory as uint8 and cropping and resampling run
    there, so that feeding patches never holds the GPU back.
    """

    def __init__(
        self,
        files: list[Path],
        patch: int,
        min_scale: float = 0.5,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        if not 0 < min_scale <= 1:
            raise ValueError("min_scale must be in (0, 1]")
        self.patch = patch
        self.min_scale = min_scale
        self.rng = np.random.default_rng(seed)
        self.images = []
        for f in files:
            a = imagefile.read_rgb8(f, allow_lossy=True).pixels  # nic's rules, no warnings
            if min(a.shape[:2]) >= patch:
                self.images.append(torch.from_numpy(a.copy()).permute(2, 0, 1).to(device))
        if not self.images:
            raise ValueError(f"no training image is at least {patch}x{patch}")

    def _patch(self) -> torch.Tensor:
        img = self.images[self.rng.integers(len(self.images))]
        h, w = img.shape[1:]
        # Log-uniform scale in [min_scale, 1], never asking for a crop larger than the image.
        lo = max(self.min_scale, self.patch / min(h, w))
        scale = math.exp(self.rng.uniform(math.log(lo), 0.0)) if lo < 1 else 1.0
        size = min(h, w, round(self.patch / scale))
        top = int(self.rng.integers(h - size + 1))
        left = int(self.rng.integers(w - size + 1))
        crop = img[:, top : top + size, left : left + size].float()[None] / 255.0
        if size != self.patch:
            crop = F.interpolate(
                crop, size=(self.patch, self.patch), mode="bicubic", antialias=True
            ).clamp(0, 1)
        crop = crop[0]
        if self.rng.random() < 0.5:
            crop = crop.flip(-1)
        return torch.rot90(crop, int(self.rng.integers(4)), dims=(1, 2))

    def batch(self, size: int) -> torch.Tensor:
        return torch.stack([self._patch() for _ in range(size)])

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state
