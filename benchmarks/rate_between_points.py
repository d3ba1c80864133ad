"""Which network should code a rate position between two rate points of a masked model?

    python benchmarks/rate_between_points.py --images DIR [--limit 6] [--steps 8] [--json FILE]

A position k + a (0 < a < 1) can be coded by network k with a finer quantizer (its gain
stretched up) or by network k + 1 with a coarser one. For every image, both networks code the
positions k + i / steps (real files, entropy coded); network k + 1's RGB PSNR is compared with
network k's at the same bpp (network k's curve interpolated in log bpp), and the mean difference
over the images is printed per rate point k and fraction a: positive means network k + 1 is
better there. nic.model_file.NETWORK_CROSSOVER is chosen from this table.
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import torch

import imagefile
from nic import zoo
from nic.bitstream import GAIN_STEPS
from nic.codec import analysis, pack_stream, quantize, reconstruct
from nic.train.data import list_images


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return 10 * math.log10(255**2 / mse)


@torch.inference_mode()
def curve(model, image: np.ndarray, network: int, codes: list[int]) -> list[tuple[float, float]]:
    """(bpp, RGB PSNR) of `network` at each gain code."""
    h, w = image.shape[:2]
    g_a_out = analysis(model, image, codes[0], network)
    points = []
    for code in codes:
        latents = quantize(model, g_a_out, code, network)
        data = pack_stream(model, latents, code, w, h)
        x_hat = reconstruct(model, latents, code / GAIN_STEPS, h, w)
        points.append((8 * len(data) / (h * w), _psnr(x_hat, image)))
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", required=True, help="folder of test images (e.g. Kodak)")
    parser.add_argument("--model", default=None, help="masked zoo model or file (default: zoo's)")
    parser.add_argument("--limit", type=int, default=6)
    parser.add_argument("--steps", type=int, default=8, help="positions per rate point")
    parser.add_argument("--json", help="write the table here")
    args = parser.parse_args()
    model = zoo.load(args.model)
    if not model.masked:
        raise SystemExit("rate_between_points: the model must be a masked model")
    files = list_images([args.images])[: args.limit]
    k_max = model.num_rate_points - 1
    gains = {k: np.zeros((len(files), args.steps - 1)) for k in range(k_max)}
    for i, f in enumerate(files):
        image = imagefile.read_rgb8(f, allow_lossy=False).pixels
        for k in range(k_max):
            codes = [k * GAIN_STEPS + j * GAIN_STEPS // args.steps for j in range(args.steps + 1)]
            own = curve(model, image, k, codes)
            coarse = curve(model, image, k + 1, codes[1:])
            log_bpp = np.log([b for b, _ in own])
            for j, (bpp, psnr) in enumerate(coarse[:-1]):
                gains[k][i, j] = psnr - np.interp(math.log(bpp), log_bpp, [p for _, p in own])
        print(f"{f.name} done", flush=True)
    fractions = [j / args.steps for j in range(1, args.steps)]
    print("dB of network k+1 over network k at the same bpp (mean over images):")
    print("k    " + " ".join(f"a={a:.3f}" for a in fractions))
    table = {}
    for k in range(k_max):
        mean = gains[k].mean(0)
        table[k] = [round(float(v), 4) for v in mean]
        print(f"{k}    " + " ".join(f"{v:+7.3f}" for v in mean))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(
                {
                    "model": model.name,
                    "images": [f.name for f in files],
                    "fractions": fractions,
                    "db_gain_of_next_network": table,
                },
                out,
                indent=1,
            )


if __name__ == "__main__":
    main()
