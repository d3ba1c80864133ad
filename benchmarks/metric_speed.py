"""Time of the JPEG AI / FVC metric set on one image pair, against MS-SSIM + VMAF in the same run.

    python benchmarks/metric_speed.py [--image PATH] [--quality Q] [--repeats N] [--threads T]

The pair is the image (default: scikit-image's astronaut; a Kodak PNG gives the Kodak figure)
against its Pillow JPEG decode at --quality. Each metric goes through ctc.metrics.compute() as
a condition selects it, and each figure is the median of --repeats calls after one warm-up. The
baseline is what the bundled conditions computed before the JPEG AI set: MS-SSIM RGB and Y and
VMAF (4:2:0). The ratio is the JPEG AI set's total over the baseline's total.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
import torch
from PIL import Image

from ctc.images import load_image
from ctc.metrics import MetricConfig, compute, default_options

BASELINE = ("msssim_rgb", "msssim_y", "vmaf")
JPEG_AI_SET = ("msssim_yuv", "psnr_hvs", "vif_p", "iw_ssim", "fsim", "nlpd")


def _pair(path: str | None, quality: int) -> tuple[np.ndarray, np.ndarray]:
    if path:
        original = load_image(path)
    else:
        from skimage import data

        original = data.astronaut()
    buffer = io.BytesIO()
    Image.fromarray(original).save(buffer, "JPEG", quality=quality)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return original, decoded


def _seconds(name: str, original: np.ndarray, decoded: np.ndarray, repeats: int) -> float:
    config = MetricConfig("bt709", 10, {name: default_options(name)})
    compute(original, decoded, config)  # warm-up: imports, filter banks
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        compute(original, decoded, config)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="an 8-bit RGB image (default: scikit-image's astronaut)")
    parser.add_argument("--quality", type=int, default=30, help="JPEG quality of the decode")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    original, decoded = _pair(args.image, args.quality)
    height, width = original.shape[:2]
    print(f"{args.image or 'astronaut'} {width}x{height} vs JPEG q{args.quality}, "
          f"median of {args.repeats}, {args.threads} torch thread(s)")  # fmt: skip
    totals = {}
    for group, names in (("baseline", BASELINE), ("JPEG AI set", JPEG_AI_SET)):
        totals[group] = 0.0
        for name in names:
            seconds = _seconds(name, original, decoded, args.repeats)
            totals[group] += seconds
            print(f"  {group:12} {name:12} {seconds:8.3f} s")
        print(f"  {group:12} {'total':12} {totals[group]:8.3f} s")
    ratio = totals["JPEG AI set"] / totals["baseline"]
    print(f"JPEG AI set / baseline: {ratio:.2f}x")


if __name__ == "__main__":
    main()
