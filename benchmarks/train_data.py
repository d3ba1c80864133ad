"""Training data: storage formats for the packed crops, JPEG artefacts against halving, and the
patch sampler's speed against the per-patch loop it replaced, each measured in one run.

    python benchmarks/train_data.py formats PHOTOS [--limit 40]
    python benchmarks/train_data.py jpeg PHOTOS [--limit 40]
    python benchmarks/train_data.py sampler DATA [--patch 256 --batch 16 --batches 20 --device cpu]

formats: the most detailed 256 x 256 window of every n-th photo (nic.train.prepare's choice), in
bits per pixel and encoding seconds as PNG (Pillow, optimize), lossless WebP (effort 100, methods
4 and 6), and raw RGB through LZMA; every file decodes back to the same pixels.
jpeg: the PNG photos under PHOTOS compressed by Pillow's JPEG (4:2:0) at qualities 75 to 95, with
the PSNR to the original at full resolution and after halving both (Lanczos).
sampler: patches per second of PatchSampler.batch and of the per-patch loop (crop, F.interpolate,
flip, rot90 for each patch) on the same images and device, batch by batch in turn.
"""

from __future__ import annotations

import argparse
import io
import lzma
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from nic.train.data import PatchSampler, list_images, read_training_image
from nic.train.prepare import detail_windows

SIDE = 256


def _png(a: np.ndarray) -> bytes:
    b = io.BytesIO()
    Image.fromarray(a).save(b, "PNG", optimize=True)
    return b.getvalue()


def _webp(method: int):
    def encode(a: np.ndarray) -> bytes:
        b = io.BytesIO()
        Image.fromarray(a).save(b, "WEBP", lossless=True, quality=100, method=method, exact=True)
        return b.getvalue()

    return encode


FORMATS = {
    "PNG": _png,
    "WebP lossless, method 4": _webp(4),
    "WebP lossless, method 6": _webp(6),
    "raw RGB + LZMA": lambda a: lzma.compress(a.tobytes(), preset=9),
}


def formats(photos: list[Path]) -> None:
    crops = []
    for f in photos:
        a = read_training_image(f)
        windows = detail_windows(a, SIDE)
        if windows:
            top, left = windows[0]
            crops.append(np.ascontiguousarray(a[top : top + SIDE, left : left + SIDE]))
    pixels = len(crops) * SIDE * SIDE
    print(f"{len(crops)} crops of {SIDE}x{SIDE} (the most detailed window of each photo)")
    for name, encode in FORMATS.items():
        start, size = time.perf_counter(), 0
        for c in crops:
            data = encode(c)
            size += len(data)
            back = (
                np.frombuffer(lzma.decompress(data), np.uint8).reshape(c.shape)
                if name.startswith("raw")
                else np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            )
            assert np.array_equal(back, c), name
        seconds = time.perf_counter() - start
        print(f"{name:>24}: {8 * size / pixels:6.2f} bits/px  {seconds:6.1f} s (encode + check)")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255**2 / mse)


def _halve(a: np.ndarray) -> np.ndarray:
    im = Image.fromarray(a)
    return np.asarray(im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS))


def jpeg(photos: list[Path]) -> None:
    originals = []
    for f in photos:
        a = read_training_image(f)
        originals.append(a[: a.shape[0] // 16 * 16, : a.shape[1] // 16 * 16])
    print(f"{len(originals)} PNG photos; PSNR (dB) of JPEG 4:2:0 to the original")
    for quality in (75, 85, 90, 95):
        native, halved, dc = [], [], 0
        for a in originals:
            b = io.BytesIO()
            Image.fromarray(a).save(b, "JPEG", quality=quality, subsampling=2)
            with Image.open(b) as im:
                dc = im.quantization[0][0]
                j = np.asarray(im.convert("RGB"))
            native.append(_psnr(a, j))
            halved.append(_psnr(_halve(a), _halve(j)))
        print(
            f"quality {quality} (luma DC quantiser {dc}): full resolution "
            f"{np.mean(native):.2f}, both halved {np.mean(halved):.2f}"
        )


class LoopSampler:
    """The sampler before batching: one patch at a time (crop, antialiased bicubic resize,
    flip, rot90), from its own numpy stream; the baseline of `sampler`."""

    def __init__(self, images: list[torch.Tensor], patch: int, min_scale: float) -> None:
        self.images, self.patch, self.min_scale = images, patch, min_scale
        self.rng = np.random.default_rng(0)

    def _patch(self) -> torch.Tensor:
        img = self.images[self.rng.integers(len(self.images))]
        h, w = img.shape[1:]
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


def sampler(files: list[Path], args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    batched = PatchSampler(files, args.patch, args.min_scale, 0, device)
    images = [
        torch.from_numpy(a).permute(2, 0, 1).to(device)
        for a in map(read_training_image, files)
        if min(a.shape[:2]) >= args.patch
    ]
    loop = LoopSampler(images, args.patch, args.min_scale)
    print(
        f"{len(batched)} images, {device}, {torch.get_num_threads()} threads, batch "
        f"{args.batch} of {args.patch}², min_scale {args.min_scale}"
    )
    samplers = {"per-patch loop": loop, "PatchSampler.batch": batched}
    seconds = dict.fromkeys(samplers, 0.0)
    for s in samplers.values():
        s.batch(args.batch)  # warm-up
    for _ in range(args.batches):  # alternating, so that both see the same machine load
        for name, s in samplers.items():
            start = time.perf_counter()
            s.batch(args.batch)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds[name] += time.perf_counter() - start
    for name in samplers:
        rate = args.batch * args.batches / seconds[name]
        base = args.batch * args.batches / seconds["per-patch loop"]
        print(f"{name:>20}: {rate:8.1f} patches/s  x{rate / base:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    for name in ("formats", "jpeg"):
        p = sub.add_parser(name)
        p.add_argument("photos", help="folder of training photos")
        p.add_argument("--limit", type=int, default=40, help="photos measured, evenly spaced")
    p = sub.add_parser("sampler")
    p.add_argument("data", nargs="+", help="training image files or folders")
    p.add_argument("--patch", type=int, default=256)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--min-scale", type=float, default=0.5)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.what == "sampler":
        sampler(list_images(args.data), args)
        return
    files = list_images([args.photos])
    if args.what == "jpeg":
        files = [f for f in files if f.suffix.lower() == ".png"]
    step = max(1, len(files) // args.limit)
    (formats if args.what == "formats" else jpeg)(files[::step][: args.limit])


if __name__ == "__main__":
    main()
