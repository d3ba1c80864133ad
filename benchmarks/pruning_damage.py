"""What pruning a trained model at once costs, by block-ranking criterion (no training).

    python benchmarks/pruning_damage.py CONFIG.yaml --images kodak [--limit N]
                                        [--per-layer RATE]

CONFIG is a masked training config with `init:` (e.g. configs/masked-n128-gpu.yaml). The masked
model is initialized from that gain model (every block in use: the unpruned reference), then its
nested masks are set once to the configured densities, ranking blocks by weight norm or by
activation-aware saliency (input scales from one batch of the config's training patches at every
rate point; nic/train/prune_and_grow.py). Prints the mean bpp (the model's own estimate) and RGB
PSNR per rate point on the images for the three, which is where training starts when a schedule
prunes at once. With --per-layer, also rate point RATE with the weight-norm mask of one shared
layer at a time (every other layer unpruned): which layers the damage comes from.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from masked_vs_separate import rd_point
from tqdm import tqdm

from ctc.datasets import resolve_dataset
from nic import zoo
from nic.model_file import OWN_GAIN
from nic.models import build_model
from nic.models.masked import MASKED_LAYERS
from nic.train.data import PatchSampler, list_images
from nic.train.prune_and_grow import InputScales, initialize_from, select_nested_masks
from nic.train.trainer import TrainConfig


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", help="a masked training config with init:")
    parser.add_argument("--images", required=True, help="a folder of images or a ctc dataset name")
    parser.add_argument("--limit", type=int, help="use the first LIMIT images")
    parser.add_argument("--batch", type=int, default=8, help="training patches for input scales")
    parser.add_argument(
        "--per-layer", type=int, metavar="RATE", help="also prune one layer at a time"
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = TrainConfig.from_yaml(args.config)
    if not config.model.masked or not config.init:
        raise SystemExit(f"{args.config}: needs a masked model (mask_block) and init:")
    dense = build_model(config.model)
    initialize_from(dense, zoo.load(config.init).net)
    dense.eval()

    scales = InputScales(dense)
    sampler = PatchSampler(
        list_images(list(config.data)), config.patch, config.min_scale, config.seed
    )
    x = sampler.batch(args.batch)
    k = dense.num_rate_points
    for rate in range(k):
        dense(x, rate)
    models = {"unpruned": dense}
    for name, criterion in (("weight norm", None), ("activation-aware", scales)):
        pruned = build_model(config.model)
        pruned.load_state_dict(dense.state_dict())
        select_nested_masks(pruned, scales=criterion)
        models[name] = pruned.eval()

    images = resolve_dataset(args.images).images[: args.limit]
    points = {name: np.zeros((k, 2)) for name in models}
    for item in tqdm(images, desc="images", unit="image"):
        image = item.load()
        for name, model in models.items():
            for rate in range(k):
                net = model.rate_point_network(rate)
                points[name][rate] += rd_point(net, image, OWN_GAIN, "cpu")
    print(f"\n{args.config}: init {config.init}, {len(images)} images, mean bpp / RGB PSNR (dB)")
    print("\n| rate point | density | " + " | ".join(models) + " |")
    print("| --- | --- |" + " --- |" * len(models))
    for rate in range(k):
        cells = [
            f"{b / len(images):.3f} / {q / len(images):.2f}"
            for b, q in (points[name][rate] for name in models)
        ]
        print(f"| {rate} | {config.model.densities[rate]:.2f} | " + " | ".join(cells) + " |")
    if args.per_layer is not None:
        per_layer(dense, models["weight norm"], args.per_layer, images)


def per_layer(dense, pruned, rate: int, images) -> None:
    """Rate point `rate` with one layer at a time masked as in `pruned`."""
    print(f"\nrate point {rate}, one layer pruned by weight norm: mean bpp / RGB PSNR (dB)")
    print("\n| layer | bpp / PSNR |\n| --- | --- |")
    probe = build_model(dense.config)
    for layer in MASKED_LAYERS:
        probe.load_state_dict(dense.state_dict())
        probe.mask(layer)[rate] = pruned.mask(layer)[rate]
        net = probe.rate_point_network(rate)
        total = sum(np.array(rd_point(net, item.load(), OWN_GAIN, "cpu")) for item in images)
        print(f"| {layer} | {total[0] / len(images):.3f} / {total[1] / len(images):.2f} |")


if __name__ == "__main__":
    main()
