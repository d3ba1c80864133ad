"""What a VVenC preset costs: encode time and BD-rate against preset slower, on a few images.

    python -m anchors.presets --dataset kodak --images kodim05,kodim15,kodim23 \
        --presets fast,medium,slower --out anchors/results/kodak/vvenc_presets.csv

Each image is encoded at the given QPs with every preset (encodes are cached as in
anchors.freeze, so the frozen run's encodes are reused); RGB PSNR is ctc.metrics.psnr's. The
BD-rate (ctc.bdrate, pchip) of each preset against the reference preset is given per image and
as the mean over the images.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from anchors.freeze import CachedEncodes, default_cache
from anchors.vvc import VvcCodec
from ctc.bdrate import bd_rate
from ctc.datasets import resolve_dataset
from ctc.metrics.psnr import psnr_rgb

QPS = (22, 27, 32, 37, 42, 47)


def measure(
    dataset: str, images: Sequence[str], presets: Sequence[str], qps: Sequence[int], cache: Path
) -> list[dict]:
    """One row per (image, preset, QP): bytes, bpp, PSNR RGB, encode seconds."""
    data = {im.name: im for im in resolve_dataset(dataset).images}
    rows = []
    for preset in presets:
        cached = CachedEncodes(VvcCodec(preset=preset), cache)
        for name in images:
            image = data[name].load()
            digest = hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()
            for qp in qps:
                encoded = cached.encode(image, qp)
                psnr = psnr_rgb(image, cached.decode(encoded))
                bpp = 8.0 * len(encoded) / (image.shape[0] * image.shape[1])
                rows.append({"image": name, "preset": preset, "qp": qp, "bytes": len(encoded),
                             "bpp": bpp, "psnr_rgb": psnr,
                             "encode_seconds": cached.seconds[(digest, qp)]})  # fmt: skip
                print(f"{preset} {name} qp {qp}: {bpp:.3f} bpp {psnr:.2f} dB "
                      f"{cached.seconds[(digest, qp)]:.1f} s", flush=True)  # fmt: skip
    return rows


def summary(rows: list[dict], reference: str) -> list[str]:
    """Per preset: mean encode time per image and QP, BD-rate against the reference preset."""
    lines = []
    images = sorted({r["image"] for r in rows})
    for preset in dict.fromkeys(r["preset"] for r in rows):
        bds = []
        for name in images:
            ref = sorted((r["bpp"], r["psnr_rgb"]) for r in rows
                         if r["image"] == name and r["preset"] == reference)  # fmt: skip
            test = sorted((r["bpp"], r["psnr_rgb"]) for r in rows
                          if r["image"] == name and r["preset"] == preset)  # fmt: skip
            bds.append(bd_rate(*np.array(ref).T, *np.array(test).T))
        seconds = [r["encode_seconds"] for r in rows if r["preset"] == preset]
        per_image = ", ".join(f"{n} {b:+.2f} %" for n, b in zip(images, bds, strict=True))
        lines.append(f"{preset}: mean encode {np.mean(seconds):.2f} s per image and QP; BD-rate "
                     f"vs {reference}: mean {np.mean(bds):+.2f} % ({per_image})")  # fmt: skip
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m anchors.presets", description=__doc__)
    parser.add_argument("--dataset", default="kodak")
    parser.add_argument("--images", default="kodim05,kodim15,kodim23")
    parser.add_argument("--presets", default="fast,medium,slower")
    parser.add_argument("--reference", default="slower")
    parser.add_argument("--qps", default=",".join(map(str, QPS)))
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="CSV of every encode")
    args = parser.parse_args(argv)
    start = time.time()
    qps = [int(q) for q in args.qps.split(",")]
    cache = args.cache or default_cache()
    rows = measure(args.dataset, args.images.split(","), args.presets.split(","), qps, cache)
    if args.out:
        with open(args.out, "w", newline="") as f:
            writer = csv.DictWriter(f, list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    print("\n".join(summary(rows, args.reference)))
    print(f"({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
