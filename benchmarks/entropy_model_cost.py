"""Decoder and encoder cost of the ELIC model against the mean-scale hyperprior, random weights.

    python benchmarks/entropy_model_cost.py [--width 768 --height 512] [--repeat 5] [--threads 2]

kMAC per pixel (torch's FlopCounterMode through ctc.complexity.count_macs: convolutions,
transposed convolutions and GDN's 1x1 convolution) of each part, and the decoder side's time
without range coding: the integer path from the hyper-latent (h_s and every coding-plan step, the
decoded latents fed back as the decoder does) plus the float synthesis; the minimum over
`--repeat` runs after one warm-up (a shared machine). The encoder side adds g_a and h_a.
"""

from __future__ import annotations

import argparse
import time

import torch

from ctc.complexity import count_macs
from nic.entropy import scale_table
from nic.models import HyperpriorConfig, build_model, integer_entropy_path

MODELS = {
    "hyperprior N=128 M=192": HyperpriorConfig(N=128, M=192),
    "elic N=192 M=320": HyperpriorConfig(N=192, M=320, entropy_model="elic"),
}


def parts(net, x: torch.Tensor):
    """The operations of one encode and decode (no range coding), as callables."""
    path = integer_entropy_path(net, scale_table())
    with torch.inference_mode():
        y = net.analyze(x, 0.0)
        z = torch.round(net.h_a(y))

    def plan_steps():
        """h_s and every step, y_hat filled in as the steps decode it (residual from y)."""
        plan = path.start(z, "cpu")
        y64 = y.double()
        y_hat = torch.zeros_like(y64)
        for step in range(plan.steps):
            mean, _, where = plan.parameters(step, y_hat)
            decoded = torch.round(y64 - mean) + mean
            y_hat = decoded if where is None else torch.where(where, decoded, y_hat)
        return y_hat

    y_hat = plan_steps()
    return {
        "g_a": lambda: net.g_a(x),
        "h_a": lambda: net.h_a(y),
        "integer path (h_s + steps)": plan_steps,
        "g_s": lambda: net.synthesize(y_hat.float(), 0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pixels = args.width * args.height
    torch.manual_seed(0)
    x = torch.rand(1, 3, args.height, args.width)
    for name, config in MODELS.items():
        net = build_model(config).eval()
        ops = parts(net, x)
        with torch.inference_mode():
            kmac = {part: count_macs(op) / pixels / 1e3 for part, op in ops.items()}
            decoder = kmac["integer path (h_s + steps)"] + kmac["g_s"]
            encoder = kmac["g_a"] + kmac["h_a"] + kmac["integer path (h_s + steps)"]
            print(f"{name}: " + ", ".join(f"{p} {v:.1f}" for p, v in kmac.items()) + " kMAC/px")
            print(f"  decoder {decoder:.1f} kMAC/px, encoder {encoder:.1f} kMAC/px")
            times = {}
            for part in ("integer path (h_s + steps)", "g_s"):
                ops[part]()  # warm-up
                runs = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    ops[part]()
                    runs.append(time.perf_counter() - start)
                times[part] = min(runs)
            total = sum(times.values())
            print(
                f"  decoder time (min of {args.repeat}, {args.threads} threads, "
                f"{args.width}x{args.height}): "
                + ", ".join(f"{p} {t:.3f} s" for p, t in times.items())
                + f", total {total:.3f} s"
            )


if __name__ == "__main__":
    main()
