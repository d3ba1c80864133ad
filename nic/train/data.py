"""Training patches: random crops with random downscaling, flips and quarter-turn rotations.

Downscaling before cropping (as in the CLIC and JPEG AI training recipes) removes camera noise and
demosaicing artefacts and shows the model more structure per patch. A batch is drawn whole: its
random parameters first, from the sampler's own numpy stream, then every patch is cut, resampled,
flipped and turned by a few tensor operations over the batch on the sampler's device.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import WebPImagePlugin

import imagefile

IMAGE_SUFFIXES = {
    ".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".pnm", ".bmp", ".tif", ".tiff", ".webp"
}  # fmt: skip
"""Training image files by suffix: what imagefile reads (PNG, JPEG, PNM, BMP, TIFF), and WebP,
the lossless format that `nic prepare-data` writes."""


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


def read_training_image(path: str | Path) -> np.ndarray:
    """uint8 (H, W, 3) pixels of one training image.

    WebP (a single frame, RGB or RGBA whose alpha is dropped) is decoded by Pillow's WebP
    plugin, every other format by imagefile, with nic's rules and lossy conversions allowed;
    both refuse more than imagefile.MAX_PIXELS pixels before decoding. Raises OSError
    (missing, unreadable) and ValueError (imagefile's ImageFileError, or a .webp file that is
    not such a WebP image).
    """
    path = Path(path)
    if path.suffix.lower() != ".webp":
        return imagefile.read_rgb8(path, allow_lossy=True).pixels
    try:
        im = WebPImagePlugin.WebPImageFile(path)  # the header only; no decompression-bomb guess
    except SyntaxError:  # how Pillow's plugins refuse another format
        raise ValueError(f"{path}: not a WebP image") from None
    with im:
        if getattr(im, "n_frames", 1) != 1 or im.mode not in ("RGB", "RGBA"):
            raise ValueError(f"{path}: not a single-frame RGB WebP image")
        if im.width * im.height > imagefile.MAX_PIXELS:
            raise ValueError(f"{path}: {im.width}x{im.height} is over {imagefile.MAX_PIXELS} px")
        return np.array(im.convert("RGB"))


def _cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (R. Keys, "Cubic convolution interpolation
    for digital image processing", IEEE Trans. ASSP 29(6), 1981), as PIL's and torch's
    antialiased bicubic use it."""
    x = x.abs()
    near = (1.5 * x - 2.5) * x * x + 1
    far = -0.5 * (((x - 5) * x + 8) * x - 4)
    return torch.where(x < 1, near, torch.where(x < 2, far, torch.zeros_like(x)))


def resampling_weights(sizes: torch.Tensor, span: int, out: int) -> torch.Tensor:
    """Matrices that shrink crops of side `sizes[b]` (>= out) to `out` samples: (B, out, span).

    Row i of matrix b holds the weights of input samples 0 .. span - 1 for output sample i; the
    samples from sizes[b] on get weight 0, so crops of different sizes stack into one batch of
    side `span`. The weights are those of F.interpolate(mode="bicubic", antialias=True) and of
    PIL's bicubic resize: Keys' kernel widened by the downscale factor s = size / out (support
    2 s), centred at s (i + 0.5), cut to the input and normalized (torch's
    aten/src/ATen/native/cpu/UpSampleKernel.cpp); at s = 1 the matrix is the identity.
    """
    device = sizes.device
    scale = sizes.double() / out  # (B,), >= 1
    support = 2 * scale
    center = scale[:, None] * (torch.arange(out, device=device, dtype=torch.float64) + 0.5)
    first = (center - support[:, None] + 0.5).floor().clamp(min=0)
    stop = torch.minimum((center + support[:, None] + 0.5).floor(), sizes[:, None].double())
    j = torch.arange(span, device=device, dtype=torch.float64)
    w = _cubic((j - center[..., None] + 0.5) / scale[:, None, None])
    w = w * ((j >= first[..., None]) & (j < stop[..., None]))
    return (w / w.sum(-1, keepdim=True)).float()


@dataclass(frozen=True)
class PatchDraw:
    """The random parameters of a batch of patches, one entry per patch (numpy int64 arrays,
    flip bool): the image, the side of its square crop (>= the patch side), the crop's top-left
    corner, a left-right flip and the number of counter-clockwise quarter turns (0-3)."""

    image: np.ndarray
    crop: np.ndarray
    top: np.ndarray
    left: np.ndarray
    flip: np.ndarray
    turns: np.ndarray


class PatchSampler:
    """Holds the decoded images in memory and draws augmented square patches from them.

    The images live as one flat uint8 buffer on `device`; with a GPU there, cutting and
    resampling run there, so that feeding patches never holds the GPU back. Images smaller than
    `patch` on either side are left out. Raises ValueError when none is left, or for a
    min_scale outside (0, 1].
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
        planes, sizes = [], []
        for f in files:
            a = read_training_image(f)
            if min(a.shape[:2]) >= patch:
                planes.append(torch.from_numpy(a).permute(2, 0, 1).reshape(3, -1))
                sizes.append(a.shape[:2])
        if not planes:
            raise ValueError(f"no training image is at least {patch}x{patch}")
        self.heights, self.widths = np.array(sizes, dtype=np.int64).T
        self.starts = np.concatenate([[0], np.cumsum(self.heights * self.widths)[:-1]])
        self.pixels = torch.cat(planes, dim=1).to(device)  # (3, all pixels of all images)

    def __len__(self) -> int:
        """The number of images patches are drawn from."""
        return len(self.heights)

    def draw(self, size: int) -> PatchDraw:
        """The parameters of `size` patches, from the sampler's random stream: a uniform image;
        a log-uniform scale s in [max(min_scale, patch / short side), 1] and a crop of side
        round(patch / s) (at most the short side) at a uniform position; a flip with
        probability 1/2; 0-3 quarter turns, uniform."""
        rng = self.rng
        image = rng.integers(len(self), size=size)
        h, w = self.heights[image], self.widths[image]
        short = np.minimum(h, w)
        lo = np.minimum(1.0, np.maximum(self.min_scale, self.patch / short))
        scale = np.exp(np.log(lo) * (1 - rng.random(size)))
        crop = np.minimum(short, np.rint(self.patch / scale).astype(np.int64))
        top = rng.integers(h - crop + 1)
        left = rng.integers(w - crop + 1)
        flip = rng.random(size) < 0.5
        turns = rng.integers(4, size=size)
        return PatchDraw(image, crop, top, left, flip, turns)

    def cut(self, draw: PatchDraw) -> torch.Tensor:
        """The patches of `draw`: float32 (B, 3, patch, patch) in [0, 1] on the sampler's
        device, each its crop shrunk to the patch side with antialiased bicubic weights
        (resampling_weights), clamped to [0, 1], flipped left-right, then turned as torch.rot90.

        One gather reads every crop already flipped and turned (the weights are the same along
        both axes and mirror-symmetric, so this equals turning the shrunk patch); two batched
        matrix products shrink them (on a GPU that allows TF32 matmuls, to within about 2^-11
        relative).
        """
        device = self.pixels.device

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(a, device=device)

        crop = tensor(draw.crop)[:, None]
        span = int(draw.crop.max())
        # Sample i of an axis reads sample min(i, side - 1) of the crop (weight 0 past its side),
        # or side - 1 - that where the axis is reversed.
        ahead = torch.minimum(torch.arange(span, device=device), crop - 1)  # (B, span)
        back = crop - 1 - ahead
        turns = tensor(draw.turns)[:, None]
        # torch.rot90 turns k: output (i, j) reads (j, n - i), (n - i, n - j), (n - j, i) for
        # k = 1, 2, 3 (n = side - 1), after the flip reversed the columns.
        rows = torch.where(turns >= 2, back, ahead) + tensor(draw.top)[:, None]
        reverse_cols = ((turns == 1) | (turns == 2)) ^ tensor(draw.flip)[:, None]
        cols = torch.where(reverse_cols, back, ahead) + tensor(draw.left)[:, None]
        rows = rows * tensor(self.widths[draw.image])[:, None]
        odd = turns % 2 == 1  # transposed: the output's rows walk the crop's columns
        down, across = torch.where(odd, cols, rows), torch.where(odd, rows, cols)
        index = tensor(self.starts[draw.image])[:, None, None] + down[..., None] + across[:, None]
        planes = torch.arange(3, device=device)[:, None, None] * self.pixels.shape[1]
        x = self.pixels.view(-1).take(index[:, None] + planes).float().div_(255)  # B, 3, span²
        if span == self.patch:
            return x
        weights = resampling_weights(crop[:, 0], span, self.patch)[:, None]
        return (weights @ x @ weights.transpose(-1, -2)).clamp(0, 1)

    def batch(self, size: int) -> torch.Tensor:
        """`size` augmented patches: float32 (size, 3, patch, patch) in [0, 1] on the device."""
        return self.cut(self.draw(size))

    def state(self) -> dict:
        """The random stream's state (a dict of plain values): set_state resumes exactly."""
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state
