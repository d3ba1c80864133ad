"""RD curves of a nic model and of Pillow JPEG on a folder of images, and the BD-rate between them.

    python benchmarks/rd_vs_jpeg.py --images kodak [--model NAME] [--range 0.25 1.5]

nic is run at every rate point, JPEG at a sweep of qualities. The dataset-average curve (mean bpp
and mean RGB PSNR over the images at each rate point or quality, as in CompressAI's published
results) is printed for both; BD-rate (pchip over log10 rate, ctc.bdrate) is computed on the
average curves' points whose mean bpp lies in --range, and also as the mean of per-image BD-rates
over the same rate points and qualities. bpp counts whole files, headers included.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from tqdm import tqdm

from anchors.jpeg import JpegCodec
from ctc.bdrate import bd_dataset, bd_rate
from ctc.datasets import resolve_dataset
from ctc.metrics.psnr import psnr_rgb
from nic import codec, zoo

JPEG_QUALITIES = (5, 10, 15, 20, 25, 30, 40, 50, 60, 70, 75, 80, 85, 90, 93, 95)


def rd_points(encode, decode, image: np.ndarray, knobs) -> list[tuple[float, float]]:
    """(bpp, RGB PSNR) at each knob value."""
    h, w = image.shape[:2]
    points = []
    for knob in knobs:
        data = encode(image, knob)
        points.append((8 * len(data) / (w * h), psnr_rgb(image, decode(data))))
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--images", required=True, help="a folder of images or a ctc dataset name (kodak, skimage)"
    )
    parser.add_argument("--model", help="zoo model name or model file (default: zoo default)")
    parser.add_argument("--range", nargs=2, type=float, default=(0.25, 1.5), metavar=("LO", "HI"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = zoo.load(args.model)
    jpeg = JpegCodec()
    files = resolve_dataset(args.images).images
    rate_points = range(model.num_rate_points)
    nic_curves, jpeg_curves = {}, {}
    for f in tqdm(files, desc="images", unit="image"):
        image = f.load()
        nic_curves[f.name] = rd_points(
            lambda im, k: codec.encode(im, model, k),
            lambda d: codec.decode(d, model),
            image,
            rate_points,
        )
        jpeg_curves[f.name] = rd_points(jpeg.encode, jpeg.decode, image, JPEG_QUALITIES)

    def average(curves: dict) -> np.ndarray:
        return np.mean(np.array(list(curves.values())), axis=0)  # (knobs, 2)

    nic_avg, jpeg_avg = average(nic_curves), average(jpeg_curves)
    print(f"\n{model.name} (sha256 {model.sha256[:16]}) vs {jpeg.version()} on {len(files)} images")
    print("nic:  rate point  bpp     RGB PSNR")
    for k, (bpp, q) in zip(rate_points, nic_avg, strict=True):
        print(f"      {k:10d}  {bpp:.4f}  {q:.3f}")
    print("JPEG: quality     bpp     RGB PSNR")
    for k, (bpp, q) in zip(JPEG_QUALITIES, jpeg_avg, strict=True):
        print(f"      {k:10d}  {bpp:.4f}  {q:.3f}")

    lo, hi = args.range
    nic_sel = [i for i, (bpp, _) in enumerate(nic_avg) if lo <= bpp <= hi]
    jpeg_sel = [i for i, (bpp, _) in enumerate(jpeg_avg) if lo <= bpp <= hi]
    bd_avg = bd_rate(
        jpeg_avg[jpeg_sel, 0], jpeg_avg[jpeg_sel, 1], nic_avg[nic_sel, 0], nic_avg[nic_sel, 1]
    )
    per_image = bd_dataset(
        {n: np.array(c)[jpeg_sel].T for n, c in jpeg_curves.items()},
        {n: np.array(c)[nic_sel].T for n, c in nic_curves.items()},
    )
    print(f"\nBD-rate of nic against JPEG, RGB PSNR, pchip, mean bpp in [{lo}, {hi}]:")
    print(f"  on the dataset-average curves: {bd_avg:+.2f} %")
    print(f"  mean of per-image BD-rates:    {per_image.per_image_mean:+.2f} %")


if __name__ == "__main__":
    main()
