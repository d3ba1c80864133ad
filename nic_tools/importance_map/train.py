"""Train the importance map against the anchor (nic-ref's model), resumably.

    python -m nic_tools.importance_map.train --data .traindata/train --out runs/importance-map \
        [--steps 2000] [--patch 128] [--batch 8] [--lr 1e-4] [--anchor frozen|fine-tune]
        [--anchor-lr 1e-5] [--export WEIGHTS]

Each step draws a batch of patches (nic.train.data.PatchSampler) and a rate point k of the
anchor. `--anchor frozen` (the default) trains the map alone: the anchor's weights do not
change, and the tool's streams decode with nic-ref's model. `--anchor fine-tune` also trains
the anchor's synthesis transform g_s (the decoder learns to use the means that stand for dropped
latents), starting from nic-ref's weights, at its own learning rate (--anchor-lr); the tool
then codes with a model file of its own (model.pt beside the exported weights), whose streams
name that file's hash.

With y the anchor's gained latents, mean and scale its entropy parameters from the rounded
hyper-latent, q = round(y - mean) and m = GroupMask(p(y)):

    y_hat = mean + m q,   R = sum(m * -log2 P(q | scale)) / pixels,
    D = 255^2 MSE(x, g_s(y_hat)),   loss = lambda_k D + R   (the anchor's lambda of k)

so the map learns where dropping latents costs less distortion than it saves rate; the
gradient reaches p only through GroupMask's proxy (Li et al., CVPR 2018). The hyper-latent's
bits do not depend on the map and are left out.

Before the first step the channels are ranked by their mean bits over a few batches (the most
expensive channels are the first groups kept), and after the last the map's integer table is
the histogram of the map over a few batches. The checkpoint (OUT/checkpoint.pt) holds the map
network, the optimizer, the sampler's random state, the step and the channel order, written
atomically every --every steps; a rerun with the same OUT resumes from it. --export writes the
weights file the tool loads (nic_tools/importance_map/weights.pt by default).
"""

from __future__ import annotations

import argparse
import math
import re
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from nic import zoo
from nic.bitstream import GAIN_STEPS
from nic.ctc_codec import NicReference
from nic.entropy import gaussian_likelihood, quantize_pmf
from nic.model_file import save_model_file
from nic.train.checkpoint import CheckpointError, save_checkpoint
from nic.train.data import PatchSampler, list_images
from nic_tools.importance_map import (
    GROUPS,
    MODEL,
    WEIGHTS,
    GroupMask,
    ImportanceNet,
    group_ranks,
)

RANKING_BATCHES = 4


def anchor_terms(model, x: torch.Tensor, k: int):
    """The frozen anchor's side of a step at rate point k: (net, position, y, mean, q, bits)."""
    rn = model.rate_network(k * GAIN_STEPS)
    with torch.no_grad():
        gain, _ = rn.net.gains(rn.position)
        y = rn.net.g_a(x).float() * gain
        z = torch.round(rn.net.h_a(y))
        mean, scale = rn.net.entropy_parameters(z)
        q = torch.round(y - mean)
        bits = -torch.log2(gaussian_likelihood(q, scale))
    return rn.net, rn.position, y, mean, q, bits


def channel_order(model, sampler: PatchSampler, batch: int) -> torch.Tensor:
    """Channels by mean bits over RANKING_BATCHES batches at every rate point, most first."""
    total = None
    for _ in range(RANKING_BATCHES):
        x = sampler.batch(batch)
        for k in range(model.num_rate_points):
            bits = anchor_terms(model, x, k)[-1].mean(dim=(0, 2, 3))
            total = bits if total is None else total + bits
    return torch.argsort(total, descending=True)


def step_loss(model, imap: ImportanceNet, ranks: torch.Tensor, x: torch.Tensor, k: int):
    """(loss, bpp, mse, kept fraction) of one batch at rate point k."""
    net, position, y, mean, q, bits = anchor_terms(model, x, k)
    mask = GroupMask.apply(imap(y), ranks)
    x_hat = net.synthesize(mean + mask * q, position)
    pixels = x.shape[0] * x.shape[2] * x.shape[3]
    rate = (mask * bits).sum() / pixels
    mse = ((x_hat - x) ** 2).mean()
    lam = float(model.net.config.lambdas[k])
    return lam * 255.0**2 * mse + rate, rate.detach(), mse.detach(), mask.mean().detach()


def map_counts(model, imap: ImportanceNet, sampler: PatchSampler, batch: int) -> np.ndarray:
    """The map table: integer counts of g = ceil(L p) over a few batches at every rate point."""
    hist = np.ones(GROUPS + 1)
    with torch.no_grad():
        for _ in range(RANKING_BATCHES):
            x = sampler.batch(batch)
            for k in range(model.num_rate_points):
                y = anchor_terms(model, x, k)[2]
                g = torch.ceil(GROUPS * imap(y)).long().clamp(0, GROUPS)
                hist += np.bincount(g.flatten().numpy(), minlength=GROUPS + 1)
    return quantize_pmf(hist / hist.sum())


def synthesis_parameters(net: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The synthesis transform's parameters: g_s's of a gain model ("g_s.0.weight"), or of a
    masked model's shared and per-rate-point parts ("shared.g_s_0", "independent.0.g_s_0_bias")."""
    return [p for name, p in net.named_parameters() if re.search(r"(^|\.)g_s[._]", name)]


def load_state(path: Path) -> dict:
    """This trainer's checkpoint (tensors and plain values only); CheckpointError otherwise."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a damaged or foreign file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__})") from None
    keys = {"net", "optimizer", "sampler", "order", "step"}
    missing = keys - set(state) if isinstance(state, dict) else keys
    if missing:
        raise CheckpointError(f"{path}: not an importance-map checkpoint (no {sorted(missing)})")
    return state


def train(args: argparse.Namespace) -> Path:
    torch.manual_seed(args.seed)
    model = NicReference().on_device("cpu").model  # a copy of its own: the zoo's stays as is
    for p in model.net.parameters():
        p.requires_grad_(False)
    tuned = synthesis_parameters(model.net) if args.anchor == "fine-tune" else []
    for p in tuned:
        p.requires_grad_(True)
    sampler = PatchSampler(list_images(args.data), args.patch, seed=args.seed)
    imap = ImportanceNet(model.net.config.M)
    groups = [{"params": list(imap.parameters())}]
    if tuned:
        groups.append({"params": tuned, "lr": args.anchor_lr})
    optimizer = torch.optim.Adam(groups, lr=args.lr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "checkpoint.pt"
    step = 0
    if path.is_file():
        state = load_state(path)
        if state.get("anchor", "frozen") != args.anchor:
            raise CheckpointError(f"{path}: trained with --anchor {state.get('anchor', 'frozen')}"
                                  f", not {args.anchor}")  # fmt: skip
        if tuned:
            model.net.load_state_dict(state["anchor_net"])
        imap.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        sampler.set_state(state["sampler"])
        order, step = state["order"], state["step"]
        print(f"resumed at step {step}", flush=True)
    else:
        order = channel_order(model, sampler, args.batch)
    ranks = group_ranks(order)
    rng = np.random.default_rng(args.seed + step)
    start, log = time.time(), []
    while step < args.steps:
        k = int(rng.integers(model.num_rate_points))
        loss, bpp, mse, kept = step_loss(model, imap, ranks, sampler.batch(args.batch), k)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        log.append((float(loss.detach()), float(bpp), float(mse), float(kept)))
        if step % args.every == 0 or step == args.steps:
            mean = np.mean(log, axis=0)
            psnr = 10 * math.log10(1 / max(mean[2], 1e-12))
            print(f"step {step}: loss {mean[0]:.4f} bpp {mean[1]:.4f} PSNR {psnr:.2f} dB "
                  f"kept {mean[3]:.3f} ({time.time() - start:.0f} s)", flush=True)  # fmt: skip
            log = []
            state = {"net": imap.state_dict(), "optimizer": optimizer.state_dict(),
                     "sampler": sampler.state(), "order": order, "step": step,
                     "anchor": args.anchor}  # fmt: skip
            if tuned:
                state["anchor_net"] = model.net.state_dict()
            save_checkpoint(state, path)
    if args.export:
        counts = map_counts(model, imap, sampler, args.batch)
        weights = {"net": imap.state_dict(), "order": order,
                   "map_counts": torch.from_numpy(counts.astype(np.int64))}  # fmt: skip
        tmp = Path(args.export).with_suffix(".tmp")
        torch.save(weights, tmp)
        tmp.replace(args.export)
        print(f"wrote {args.export}", flush=True)
        if tuned:
            anchor = Path(args.export).with_name(MODEL.name)
            metadata = {"training": {"init": zoo.default_name(), "tool": "importance-map",
                                     "fine_tuned": "g_s", "steps": step}}  # fmt: skip
            save_model_file(anchor, "nic-importance-map-anchor", model.net, metadata)
            print(f"wrote {anchor}", flush=True)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nic_tools.importance_map.train",
                                     description=__doc__.split("\n")[0])  # fmt: skip
    parser.add_argument("--data", nargs="+", required=True, help="training images or folders")
    parser.add_argument("--out", required=True, help="run folder (checkpoint.pt)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--every", type=int, default=50, help="log and checkpoint interval")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--anchor", choices=("frozen", "fine-tune"), default="frozen",
                        help="keep the anchor's weights or fine-tune its g_s")  # fmt: skip
    parser.add_argument("--anchor-lr", type=float, default=1e-5,
                        help="learning rate of g_s with --anchor fine-tune")  # fmt: skip
    parser.add_argument("--export", nargs="?", const=str(WEIGHTS), default=None,
                        help=f"write the tool's weights file (default {WEIGHTS})")  # fmt: skip
    train(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
