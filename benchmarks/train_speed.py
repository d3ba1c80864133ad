"""Training step time at each precision, on one device, in one run.

    python benchmarks/train_speed.py CONFIG.yaml [--steps 50] [--precisions fp32 tf32 bf16]

Builds the config's model, then times forward + backward + Adam on random patches of the
config's batch and patch size: the same loss, autocast and (masked models) input-scale hooks as
nic/train/trainer.py. Prints milliseconds per step and the speed against the first precision
listed. On a CPU only fp32 and bf16 (autocast) are meaningful.
"""

from __future__ import annotations

import argparse
import time

import torch

from nic.models import build_model
from nic.train.loss import rd_loss
from nic.train.prune_and_grow import InputScales
from nic.train.trainer import TrainConfig

WARMUP = 10


def step_time(config: TrainConfig, precision: str, steps: int, device: torch.device) -> float:
    """Seconds per training step of config's model at `precision`."""
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = precision != "fp32"
        torch.backends.cudnn.allow_tf32 = precision != "fp32"
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    net = build_model(config.model).to(device).train()
    if config.model.masked:
        InputScales(net)  # the trainer records input scales on every masked step
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-5)
    x = torch.rand(config.batch, 3, config.patch, config.patch, device=device)
    lam = torch.full((config.batch,), config.model.lambdas[0], device=device)
    rate = 0 if config.model.masked else torch.zeros(config.batch, dtype=torch.long, device=device)
    autocast = torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16")
    start = 0.0
    for i in range(WARMUP + steps):
        if i == WARMUP:
            if cuda:
                torch.cuda.synchronize(device)
            start = time.perf_counter()
        with autocast:
            loss = rd_loss(net(x, rate), x, lam, config.model.distortion)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if cuda:
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--precisions", nargs="+", default=["tf32", "bf16"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    config = TrainConfig.from_yaml(args.config)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{name}, batch {config.batch}, patch {config.patch}, N={config.model.N}")
    times = {}
    for precision in args.precisions:
        t = times[precision] = step_time(config, precision, args.steps, device)
        base = times[args.precisions[0]]
        print(f"{precision:>5}: {1000 * t:7.2f} ms/step  {1 / t:6.1f} steps/s  x{base / t:.2f}")
    print(f"fastest: {min(times, key=times.get)}")


if __name__ == "__main__":
    main()
