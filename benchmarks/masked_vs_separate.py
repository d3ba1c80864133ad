"""A masked multi-rate model against separately trained single-rate models.

    python benchmarks/masked_vs_separate.py CHECKPOINT --images DIR [--reference MODEL]
                                           [--device cuda] [--json FILE]

CHECKPOINT is a masked model's training run with `baselines: true` (nic/train/trainer.py): the
masked model and, per rate point, a single-rate model trained on the same batches for the same
steps. Every image is coded at every rate point by both; rate is the models' own estimate
(-log2 of the likelihoods of the rounded latents, MeanScaleHyperprior.float_estimate: the file
adds a header of about 25 bytes to both), quality the RGB PSNR of the 8-bit reconstruction.
Prints the parameter table of Jiang et al. (WG1 m89074, 2020) and the BD-rate (pchip) of the
masked model against the separate ones; with --reference, also against that gain model's rate
points. An image whose curve cannot enter a BD-rate for either side (ctc.bdrate.curve_problem:
e.g. a weakly trained model's quality that does not rise with rate) is left out of it and named.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ctc.bdrate import bd_dataset, curve_problem
from ctc.datasets import resolve_dataset
from nic import zoo
from nic.codec import padded_tensor
from nic.model_file import OWN_GAIN
from nic.models import MeanScaleHyperprior
from nic.train.checkpoint import CheckpointError, build_network, load_checkpoint


@torch.inference_mode()
def rd_point(net: MeanScaleHyperprior, image: np.ndarray, rate: float, device) -> tuple:
    """(estimated bpp, RGB PSNR) of one image at one rate position of a gain model."""
    h, w = image.shape[:2]
    x = padded_tensor(image).to(device)
    bits, y_hat = net.float_estimate(net.analyze(x, rate))
    x_hat = net.synthesize(y_hat, rate)[0, :, :h, :w].clamp(0, 1)
    pixels = torch.round(x_hat * 255).permute(1, 2, 0).cpu().numpy()
    mse = float(np.mean((pixels - image.astype(np.float64)) ** 2))
    return bits / (h * w), 10 * math.log10(255**2 / max(mse, 1e-12))


def load_run(checkpoint: str, device) -> tuple:
    """(masked model, [single-rate baselines]) from a training checkpoint."""
    try:
        ckpt = load_checkpoint(checkpoint)
        if not ckpt["model_config"].get("mask_block") or "baselines" not in ckpt:
            raise SystemExit(f"{checkpoint}: not a masked run trained with baselines: true")
        masked = build_network(ckpt["model_config"], ckpt["model"], checkpoint)
        lambdas = masked.config.lambdas
        if not isinstance(ckpt["baselines"], list) or len(ckpt["baselines"]) != len(lambdas):
            raise CheckpointError(f"{checkpoint}: damaged checkpoint (not one baseline per lambda)")
        baselines = [
            build_network(masked.config.gain_model((lam,)), state, checkpoint).to(device).eval()
            for lam, state in zip(lambdas, ckpt["baselines"], strict=True)
        ]
    except CheckpointError as e:
        raise SystemExit(str(e)) from None
    return masked.to(device).eval(), baselines, ckpt["step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument(
        "--images", required=True, help="a folder of images or a ctc dataset name (kodak, skimage)"
    )
    parser.add_argument("--reference", help="a gain model (zoo name or file) to compare with")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", help="write every point and result here")
    args = parser.parse_args()
    device = torch.device(args.device)
    masked, baselines, steps = load_run(args.checkpoint, device)
    k = masked.num_rate_points
    networks = [masked.rate_point_network(r).to(device) for r in range(k)]
    reference = zoo.load(args.reference) if args.reference else None
    if reference is not None:
        reference.net.to(device)
    files = resolve_dataset(args.images).images
    curves: dict[str, dict[str, list]] = {"masked": {}, "separate": {}, "reference": {}}
    for f in tqdm(files, desc="images", unit="image"):
        image = f.load()
        curves["masked"][f.name] = [rd_point(n, image, OWN_GAIN, device) for n in networks]
        curves["separate"][f.name] = [rd_point(n, image, 0.0, device) for n in baselines]
        if reference is not None:
            curves["reference"][f.name] = [
                rd_point(reference.net, image, float(r), device)
                for r in range(reference.num_rate_points)
            ]

    counts = masked.parameter_counts()
    single = sum(p.numel() for p in baselines[0].parameters())
    lambdas = masked.config.lambdas
    print(f"\n{args.checkpoint}: {steps} steps, {k} rate points, {len(files)} images")
    print(
        "\n| lambda | density | used, masked | used, separate | bpp masked / separate "
        "| PSNR masked / separate |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    average = {name: np.mean(list(c.values()), axis=0) for name, c in curves.items() if c}
    for r in range(k):
        (bm, qm), (bs, qs) = average["masked"][r], average["separate"][r]
        print(
            f"| {lambdas[r]:g} | {masked.config.densities[r]:.2f} | {counts['used'][r]:,} "
            f"| {single:,} | {bm:.4f} / {bs:.4f} | {qm:.2f} / {qs:.2f} |"
        )
    total_separate = single * k
    print(
        f"\nmasked: {counts['shared']:,} shared + {k} x {counts['independent_per_rate_point']:,} "
        f"independent = {counts['total']:,} parameters (+ {counts['mask_bits']:,} mask bits)"
    )
    print(
        f"separate: {k} x {single:,} = {total_separate:,} parameters; "
        f"the masked model has {100 * (1 - counts['total'] / total_separate):.1f} % fewer"
    )

    def bd(anchor: str, test: str) -> dict:
        """BD-rate over the images where both curves can enter one (a weakly trained model's
        quality may not rise with rate)."""
        pairs = {
            n: (np.array(curves[anchor][n]).T, np.array(curves[test][n]).T) for n in curves[anchor]
        }
        names = [n for n, pair in pairs.items() if not any(map(curve_problem, pair))]
        skipped = sorted(set(pairs) - set(names))
        if not names:
            return {"error": "no image has usable curves for both", "skipped": skipped}
        result = bd_dataset({n: pairs[n][0] for n in names}, {n: pairs[n][1] for n in names})
        return {
            "per_image_mean": result.per_image_mean,
            "average_curve": result.average_curve.value,
            "overlap": result.average_curve.overlap,
            "images": len(names),
            "skipped": skipped,
        }

    results = {"masked_vs_separate": bd("separate", "masked")}
    if reference is not None:
        results["masked_vs_reference"] = bd("reference", "masked")
        results["separate_vs_reference"] = bd("reference", "separate")
    for name, r in results.items():
        if "error" in r:
            print(f"BD-rate {name}: not computed ({r['error']}: {', '.join(r['skipped'])})")
            continue
        print(
            f"BD-rate {name}: per-image mean {r['per_image_mean']:+.2f} %, "
            f"average curve {r['average_curve']:+.2f} % (overlap {r['overlap']:.2f}; "
            f"{r['images']} images"
            + (f", left out as unusable: {', '.join(r['skipped'])})" if r["skipped"] else ")")
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "checkpoint_steps": steps,
                    "lambdas": list(lambdas),
                    "densities": list(masked.config.densities),
                    "parameters": counts,
                    "single_rate_parameters": single,
                    "curves": curves,
                    "bd_rate": results,
                    "reference": reference.name if reference else None,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
