"""Training throughput of one config's step in variants (precision, torch.compile, memory format,
batch), on one device, in one run.

    python benchmarks/train_speed.py CONFIG.yaml [--steps 40] [--warmup 10] [--precisions tf32 bf16]
        [--compile none default] [--memory-formats contiguous channels_last]
        [--batches 16 32 64] [--patch P] [--threads T]

Every variant of the cross product builds the config's model afresh and times the trainer's own
step (nic/train/trainer.py, TrainStep: forward, loss, rate balance, backward, clipping, Adam; a
masked model at rate point 0 with its input-scale hooks, a gain model with a random rate point
per patch) on random patches, after warm-up steps that include compiling. Prints milliseconds
per step, images per second (batch x steps / s) and the ratio of images per second against the
first variant (the first value of each option: by default the config's precision, batch and
memory format, eager: what `nic train` does without these settings), and the warm-up time, which
a compiled run pays again in every fresh process. A variant that compiled again while it was
timed is marked: its figure is no steady state. On a CPU only fp32 and bf16 (autocast) mean
anything.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch
from torch._dynamo.utils import counters

from nic.models import build_model
from nic.train.loss import RateBalance
from nic.train.prune_and_grow import InputScales
from nic.train.trainer import COMPILE_MODES, PRECISIONS, TrainConfig, TrainStep

FORMATS = ("contiguous", "channels_last")


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(config: TrainConfig, steps: int, warmup: int, device: torch.device) -> dict:
    """Seconds per step and warm-up seconds of config's training step; whether it compiled
    again while timed."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = config.precision != "fp32"
        torch.backends.cudnn.allow_tf32 = config.precision != "fp32"
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    torch._dynamo.reset()
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    net = build_model(config.model).to(device, memory_format=memory_format).train()
    if config.model.masked:
        InputScales(net)  # the trainer records input scales on every masked step
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-5)
    k = len(config.model.lambdas)
    balance = RateBalance(config.rate_balance, k, device) if config.rate_balance != "none" else None
    step = TrainStep(config)
    x = torch.rand(config.batch, 3, config.patch, config.patch, device=device)
    lambdas = torch.tensor(config.model.lambdas, device=device)
    start = time.perf_counter()
    for i in range(warmup + steps):
        if i == warmup:
            _synchronize(device)
            warmup_s = time.perf_counter() - start
            graphs = counters["stats"]["unique_graphs"]
            start = time.perf_counter()
        if config.model.masked:
            step(net, optimizer, x, 0, lambdas[0].expand(config.batch), balance)
        else:
            rate = torch.randint(k, (config.batch,), device=device)
            step(net, optimizer, x, rate, lambdas[rate], balance)
    _synchronize(device)
    seconds = (time.perf_counter() - start) / steps
    recompiled = counters["stats"]["unique_graphs"] != graphs
    return {"step_s": seconds, "warmup_s": warmup_s, "recompiled": recompiled}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per variant")
    parser.add_argument(
        "--warmup", type=int, default=10, help="steps before timing (compiling: at least 3)"
    )
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS)
    parser.add_argument("--compile", nargs="+", choices=COMPILE_MODES, help="default: config's")
    parser.add_argument("--memory-formats", nargs="+", choices=FORMATS, help="default: config's")
    parser.add_argument("--batches", nargs="+", type=int, help="default: the config's batch")
    parser.add_argument("--patch", type=int, help="patch side (default: the config's)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: the config's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    config = TrainConfig.from_yaml(args.config)
    if args.patch:
        config = replace(config, patch=args.patch)
    if args.threads or config.threads:
        torch.set_num_threads(args.threads or config.threads)
    device = torch.device(args.device)
    options = {
        "precision": args.precisions or [config.precision],
        "compile": args.compile or [config.compile],
        "channels_last": [f == "channels_last" for f in args.memory_formats]
        if args.memory_formats
        else [config.channels_last],
        "batch": args.batches or [config.batch],
    }
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    print(
        f"{name}{threads}, patch {config.patch}, N={config.model.N}, M={config.model.M}, "
        f"{'masked' if config.model.masked else 'gain'} model, {args.steps} steps per variant "
        f"after {args.warmup}"
    )
    variants = [{}]
    for key, values in options.items():
        variants = [{**v, key: value} for v in variants for value in values]
    varying = [key for key, values in options.items() if len(values) > 1] or ["precision"]
    base = None
    for variant in variants:
        label = " ".join(
            ("channels_last" if variant[key] else "contiguous")
            if key == "channels_last"
            else f"b{variant[key]}"
            if key == "batch"
            else str(variant[key])
            for key in varying
        )
        t = time_steps(replace(config, **variant), args.steps, args.warmup, device)
        images = variant["batch"] / t["step_s"]
        base = base or images
        print(
            f"{label:>40}: {1000 * t['step_s']:8.2f} ms/step {images:8.1f} images/s "
            f"x{images / base:.2f}  warm-up {t['warmup_s']:.1f} s"
            + ("  (compiled again while timed)" if t["recompiled"] else "")
        )


if __name__ == "__main__":
    main()
