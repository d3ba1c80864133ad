"""A/B of the per-rate-point loss balance: one run per `rate_balance`, compared on images.

    python benchmarks/rate_balance_ab.py CONFIG.yaml --images DIR [--limit 8]
                                         [--balances none gradient] [--data PACK] [--json FILE]

Trains CONFIG once per balance (nic/train/trainer.py; output folder CONFIG's output plus
"-BALANCE", resumed when it exists), all from the same seed: the patch sampler has its own random
stream, so every run sees the same batches, and the joint schedule the same rate point at each
step. --data PACK replaces the config's data and holdout by PACK/train and PACK/holdout (the
folders `nic prepare-data` writes). Then codes the first LIMIT images at every rate point of each
run (a masked model's rate points as their coding networks, a gain model's at whole positions):
rate as the model's own estimate (benchmarks/masked_vs_separate.py, rd_point), RGB PSNR of the
8-bit reconstruction, and the training objective lambda * 255^2 * MSE + bpp. Prints per rate
point the image means for every run and the BD-rate (RGB PSNR, pchip; per-image mean and average
curve) of each run against the first, over all rate points and over the lower and the upper half.
The JSON also holds each run's training loss, bpp and PSNR on its holdout crops at every rate
point (nic/train/trainer.py, evaluate_holdout).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from masked_vs_separate import rd_point
from tqdm import tqdm

from ctc.bdrate import bd_dataset
from ctc.datasets import resolve_dataset
from nic.train.checkpoint import build_network, load_checkpoint
from nic.train.loss import RATE_BALANCES
from nic.train.trainer import TrainConfig, evaluate_holdout, holdout_crops, train


def run_curves(checkpoint: Path, images: list) -> tuple[list[float], dict[str, list]]:
    """(lambdas, image name -> [(bpp, RGB PSNR) per rate point]) of a training checkpoint."""
    ckpt = load_checkpoint(checkpoint)
    net = build_network(ckpt["model_config"], ckpt["model"], checkpoint).eval()
    k = net.num_rate_points
    if net.config.masked:  # position 1: the rate point network's own gain
        points = [(net.rate_point_network(r), 1.0) for r in range(k)]
    else:
        points = [(net, float(r)) for r in range(k)]
    curves = {}
    for image in tqdm(images, desc=checkpoint.parent.name, unit="image"):
        pixels = image.load()
        curves[image.name] = [rd_point(n, pixels, position, "cpu") for n, position in points]
    return list(net.config.lambdas), curves


def bd(anchor: dict[str, list], test: dict[str, list], points: slice) -> dict:
    """BD-rate of test against anchor on the rate points `points` of every image."""
    result = bd_dataset(
        {n: np.array(c[points]).T for n, c in anchor.items()},
        {n: np.array(c[points]).T for n, c in test.items()},
    )
    return {
        "per_image_mean": result.per_image_mean,
        "average_curve": result.average_curve.value,
        "overlap": result.average_curve.overlap,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config")
    parser.add_argument("--images", required=True, help="a folder of images or a ctc dataset")
    parser.add_argument("--limit", type=int, default=8, help="use the first LIMIT images")
    parser.add_argument(
        "--balances", nargs="+", default=["none", "gradient"], choices=RATE_BALANCES
    )
    parser.add_argument("--data", help="a `nic prepare-data` pack: its train/ and holdout/")
    parser.add_argument("--json", help="write the runs, every point and the BD-rates here")
    args = parser.parse_args()
    config = TrainConfig.from_yaml(args.config)
    if args.data:
        pack = Path(args.data).resolve()
        config = replace(config, data=(str(pack / "train"),), holdout=(str(pack / "holdout"),))
    images = resolve_dataset(args.images).images[: args.limit]
    runs = {}
    for balance in args.balances:
        run = replace(config, rate_balance=balance, output=f"{config.output}-{balance}")
        checkpoint = train(run)
        state = load_checkpoint(checkpoint)
        lambdas, curves = run_curves(checkpoint, images)
        runs[balance] = {
            "output": run.output,
            "steps": state["step"],
            "wall_time_s": state["wall_time_s"],
            "data": state["data"],
            "curves": curves,
        }
        if run.holdout:
            net = build_network(state["model_config"], state["model"], checkpoint)
            crops = holdout_crops(list(run.holdout), run.patch)
            runs[balance]["holdout"] = evaluate_holdout(net, crops, run.batch)

    k = len(lambdas)
    print(f"\n{args.config}: {config.steps} steps, {len(images)} images")
    print("(image means: bpp / RGB PSNR / objective lambda * 255^2 * MSE + bpp)")
    print("| rate point | lambda | " + " | ".join(args.balances) + " |")
    print("| --- | --- |" + " --- |" * len(args.balances))
    table = []
    for r in range(k):
        row = {"rate_point": r, "lambda": lambdas[r]}
        cells = []
        for balance in args.balances:
            points = np.array([c[r] for c in runs[balance]["curves"].values()])
            bpp, psnr = points[:, 0], points[:, 1]
            objective = lambdas[r] * 255**2 * 10 ** (-psnr / 10) + bpp
            row[balance] = {
                "bpp": float(bpp.mean()),
                "psnr_db": float(psnr.mean()),
                "objective": float(objective.mean()),
            }
            cells.append(f"{bpp.mean():.4f} / {psnr.mean():.2f} / {objective.mean():.4f}")
        table.append(row)
        print(f"| {r} | {lambdas[r]:g} | " + " | ".join(cells) + " |")

    anchor = args.balances[0]
    halves = {"all": slice(None), "lower": slice(0, (k + 1) // 2), "upper": slice(k // 2, None)}
    bd_rates = {}
    for balance in args.balances[1:]:
        bd_rates[balance] = {
            name: bd(runs[anchor]["curves"], runs[balance]["curves"], points)
            for name, points in halves.items()
        }
        for name, r in bd_rates[balance].items():
            print(
                f"BD-rate {balance} vs {anchor}, {name} rate points: per-image mean "
                f"{r['per_image_mean']:+.2f} %, average curve {r['average_curve']:+.2f} % "
                f"(overlap {r['overlap']:.2f})"
            )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "command": shlex.join(["python", *sys.argv]),
                    "config": args.config,
                    "steps": config.steps,
                    "images": [image.name for image in images],
                    "lambdas": lambdas,
                    "rate_points": table,
                    "bd_rate_vs_" + anchor: bd_rates,
                    "runs": runs,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
