"""What a target-bpp encode (nic.ratecontrol.encode_to_target) costs next to one plain encode.

    python benchmarks/rate_control_cost.py [--images DIR] [--count N] [--model NAME] [--baseline]
    python benchmarks/rate_control_cost.py --prior [--images DIR] [--model NAME]

For every image and FVC target (0.06 0.12 0.25 0.5 0.75 1.0 1.5 bpp): the time of the
target-bpp encode over the time of one plain nic.codec.encode at the rate position it chose
(both measured here, one after the other), the analysis transforms (one per network whose
analysis ran), real encodes and rate estimates it made, and whether the file is within ±5 % of
the target. --baseline measures the same way the search nic used before, which brackets the
target between the lowest and highest gain code and so runs most networks' analyses (`baseline`
and `baseline_search` below, kept here only for the comparison). torch runs on one thread (the
figures were measured on a machine of two shared cores). --images is a folder or a ctc dataset
name (default: the Kodak folder .kodak-data/kodak when present, else "skimage"); --count the
first N images (default 4).

--prior fits the model's nic.ratecontrol.RatePrior on all the images (its entry in RATE_PRIORS):
the estimated log bpp at each rate point, linear in the photo's activity.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from ctc.datasets import resolve_dataset
from nic import codec, zoo
from nic.bitstream import GAIN_STEPS
from nic.model_file import CodecModel
from nic.ratecontrol import RatePrior, encode_to_target, image_activity

TARGETS = (0.06, 0.12, 0.25, 0.5, 0.75, 1.0, 1.5)
KODAK = Path(__file__).resolve().parent.parent / ".kodak-data" / "kodak"


def measure(model: CodecModel, image: np.ndarray, target: float, search) -> dict[str, float]:
    """A target-bpp encode by `search` and a plain encode at the position it chose, timed."""
    start = time.perf_counter()
    match = search(image, model, target)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    codec.encode(image, model, match["rate"], max_pixels=None)
    plain = time.perf_counter() - start
    return {**match, "cost": seconds / plain, "hit": abs(match["bpp"] / target - 1) <= 0.05}


def current(image: np.ndarray, model: CodecModel, target: float) -> dict[str, float]:
    """nic.ratecontrol.encode_to_target, as the CTC calls it."""
    match = encode_to_target(image, model, target)
    return {
        "rate": match.rate,
        "bpp": match.bpp,
        "analyses": match.analyses,
        "encodes": match.encodes,
        "estimates": match.estimates,
    }


@torch.inference_mode()
def baseline(image: np.ndarray, model: CodecModel, target: float) -> dict[str, float]:
    """The search before this change: regula falsi over all gain codes from both ends, each code
    estimated by the network that codes it (a masked model's analysis runs for each)."""
    pixels = image.shape[0] * image.shape[1]
    max_code = round(GAIN_STEPS * model.max_rate_position)
    outputs: dict[int, torch.Tensor] = {}
    known: dict[int, float] = {}

    def log_bits(code: int) -> float:
        if code not in known:
            network = model.rate_network(code)
            if network.index not in outputs:
                outputs[network.index] = codec.analysis(model, image, code)
            gain, _ = network.net.gains(network.position)
            bits = network.net.float_estimate(outputs[network.index] * gain)[0]
            known[code] = math.log(max(bits, 1.0))
        return known[code]

    goal, tried = target * pixels, {}
    while len(tried) < 4:
        code = baseline_search(log_bits, math.log(goal), max_code)
        if code in tried:
            break
        latents = codec.quantize(model, outputs[model.rate_network(code).index], code)
        data = tried[code] = codec.pack_stream(model, latents, code, *image.shape[1::-1])
        if abs(8 * len(data) / pixels / target - 1) <= 0.05:
            break
        goal *= target * pixels / (8 * len(data))
    code, data = min(tried.items(), key=lambda item: abs(8 * len(item[1]) / pixels / target - 1))
    return {
        "rate": code / GAIN_STEPS,
        "bpp": 8 * len(data) / pixels,
        "analyses": len(outputs),
        "encodes": len(tried),
        "estimates": len(known),
    }


def baseline_search(log_bits, goal: float, max_code: int) -> int:
    """The baseline's regula falsi on log bits, bracketed by the lowest and highest code."""
    lo, hi = 0, max_code
    if log_bits(lo) >= goal:
        return lo
    if log_bits(hi) <= goal:
        return hi
    while hi - lo > 1:
        f_lo, f_hi = log_bits(lo) - goal, log_bits(hi) - goal
        code = min(max(round(lo + (hi - lo) * -f_lo / (f_hi - f_lo)), lo + 1), hi - 1)
        if abs(log_bits(code) - goal) < 0.01:
            return code
        lo, hi = (code, hi) if log_bits(code) < goal else (lo, code)
        if hi - lo > 8 and min(code - lo, hi - code) < (hi - lo) / 8:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if log_bits(mid) < goal else (lo, mid)
    return lo if goal - log_bits(lo) < log_bits(hi) - goal else hi


def warm_up(model: CodecModel, image: np.ndarray) -> None:
    """Build every network of the model (once per process) outside the timings."""
    for k in range(model.num_rate_points):
        codec.encode(image[:64, :64], model, k)


def report(name: str, rows: list[dict[str, float]]) -> None:
    """Means of a search's rows."""
    mean = {key: statistics.mean(row[key] for row in rows) for key in rows[0]}
    costs = [row["cost"] for row in rows]
    print(
        f"{name:9} cost x{mean['cost']:.2f} (median x{statistics.median(costs):.2f},"
        f" max x{max(costs):.2f}), analyses {mean['analyses']:.2f}"
        f" (max {max(r['analyses'] for r in rows)}), real encodes {mean['encodes']:.2f},"
        f" estimates {mean['estimates']:.1f}, in ±5 %: {sum(r['hit'] for r in rows)}/{len(rows)}"
    )


def fit_prior(model: CodecModel, images: list[np.ndarray]) -> RatePrior:
    """Least squares of the estimated log bpp at each rate point on the photos' activity."""
    activity = np.array([image_activity(image) for image in images])
    rate_points = range(model.num_rate_points)
    log_bpp = np.array(
        [
            [
                math.log(codec.estimated_bits(model, image, k) / image[..., 0].size)
                for k in rate_points
            ]
            for image in images
        ]
    )
    design = np.stack([np.ones_like(activity), activity], axis=1)
    (intercept, slope), *_ = np.linalg.lstsq(design, log_bpp, rcond=None)
    return RatePrior(
        tuple(round(float(v), 3) for v in intercept),
        tuple(round(float(v), 3) for v in slope),
        (round(float(activity.min()), 2), round(float(activity.max()), 2)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = str(KODAK) if KODAK.is_dir() else "skimage"
    parser.add_argument("--images", default=default, help="a folder or ctc dataset name")
    parser.add_argument("--count", type=int, default=4, help="the first N images (default 4)")
    parser.add_argument("--model", help="zoo model name or model file (default: zoo default)")
    parser.add_argument("--baseline", action="store_true", help="also time the former search")
    parser.add_argument("--prior", action="store_true", help="print RATE_PRIORS' entry")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = zoo.load(args.model)
    items = resolve_dataset(args.images).images
    if args.prior:
        print(model.sha256[:16], model.name, fit_prior(model, [item.load() for item in items]))
        return
    items = items[: args.count]
    print(f"model {model.name}, {len(items)} images of {args.images}, torch on 1 thread")
    searches = {"current": current, **({"baseline": baseline} if args.baseline else {})}
    rows: dict[str, list] = {name: [] for name in searches}
    for item in items:
        image = item.load()
        warm_up(model, image)
        for target in TARGETS:
            line = f"{item.name:10} {target:5}"
            for name, search in searches.items():
                row = measure(model, image, target, search)
                rows[name].append(row)
                line += (
                    f" | {name} rate {row['rate']:.3f} bpp {row['bpp']:.4f} x{row['cost']:.2f}"
                    f" A{row['analyses']} E{row['encodes']} est{row['estimates']}"
                )
            print(line, flush=True)
    for name, search_rows in rows.items():
        report(name, search_rows)


if __name__ == "__main__":
    main()
