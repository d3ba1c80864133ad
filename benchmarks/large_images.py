"""Peak memory and time of nic's encode and decode from 1 to 50 megapixels, tiled and untiled.

    python benchmarks/large_images.py [--sizes 1024x1024 4000x3000 8160x6120] [--untiled-up-to 5]
                                      [--rate 2.5] [--threads 1] [--skip-cost]

Each encode and each decode runs in a fresh process, which reports its own peak resident memory
(ru_maxrss: the whole process, torch and the model included) and its time; "base" is the same
process's peak after loading the model and the image, before coding. The images are a photo
(scikit-image's astronaut) mirrored out to the size, so every tile holds picture content.
Untiled coding (tiles of nic.tiling.MAX_TILE latents: one tile up to 16384 pixels a side) is
the baseline, run on the sizes up to --untiled-up-to megapixels in the same run.

The tiling cost: an image that fits both ways (2048 x 1536) is coded tiled (the default tiles)
and untiled at the rate positions 0..5, and the PSNR and size differences are printed.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def photo(width: int, height: int) -> np.ndarray:
    """uint8 (height, width, 3): astronaut.png mirrored out to the size."""
    from skimage import data

    base = data.astronaut()
    reps = (-(-height // 512) + 1, -(-width // 512) + 1)
    rows = [np.concatenate([base, base[:, ::-1]] * (reps[1] // 2 + 1), axis=1)]
    strip = rows[0]
    mosaic = np.concatenate([strip, strip[::-1]] * (reps[0] // 2 + 1), axis=0)
    return np.ascontiguousarray(mosaic[:height, :width])


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> None:
    """One encode or decode in this process; prints a JSON line."""
    import torch

    from nic import codec, zoo

    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.split("x"))
    model = zoo.load()
    stream_path = Path(args.stream)
    if args.op == "encode":
        image = photo(width, height)
        base = peak_mb()
        start = time.perf_counter()
        stream = codec.encode(image, model, args.rate, max_pixels=None, tile=args.tile)
        seconds = time.perf_counter() - start
        stream_path.write_bytes(stream)
    else:
        stream = stream_path.read_bytes()
        base = peak_mb()
        start = time.perf_counter()
        codec.decode(stream, max_pixels=None, max_memory=None)
        seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb(), "base_mb": base}))


def run_child(op: str, size: str, stream: Path, tile: int, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", op, "--size", size, "--stream", str(stream)]
    command += ["--tile", str(tile), "--rate", str(args.rate), "--threads", str(args.threads)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def memory_table(args: argparse.Namespace) -> None:
    from nic.tiling import MAX_TILE, TILE

    print(
        f"{'image':>11} {'Mpx':>5} {'coding':>8} {'enc s':>7} {'enc MB':>7} {'MB/Mpx':>7} "
        f"{'dec s':>7} {'dec MB':>7} {'MB/Mpx':>7} {'base MB':>8}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            width, height = (int(v) for v in size.split("x"))
            mpx = width * height / 1e6
            ways = [("tiled", TILE)] + (
                [("untiled", MAX_TILE)] if mpx <= args.untiled_up_to else []
            )
            for name, tile in ways:
                stream = Path(tmp) / f"{size}-{name}.nic"
                enc = run_child("encode", size, stream, tile, args)
                dec = run_child("decode", size, stream, tile, args)
                enc_mb, dec_mb = enc["peak_mb"], dec["peak_mb"]
                print(
                    f"{size:>11} {mpx:5.1f} {name:>8} {enc['seconds']:7.1f} {enc_mb:7.0f} "
                    f"{(enc_mb - enc['base_mb']) / mpx:7.0f} {dec['seconds']:7.1f} {dec_mb:7.0f} "
                    f"{(dec_mb - dec['base_mb']) / mpx:7.0f} {enc['base_mb']:8.0f}",
                    flush=True,
                )


def tiling_cost(args: argparse.Namespace) -> None:
    import torch

    from nic import codec, zoo
    from nic.tiling import MAX_TILE

    torch.set_num_threads(args.threads)
    model = zoo.load()
    image = photo(2048, 1536)
    print("\ntiling cost on 2048x1536 (default tiles vs one tile):")
    print(f"{'rate':>5} {'bpp untiled':>12} {'bpp tiled':>10} {'dPSNR dB':>9} {'max |d|':>8}")
    for rate in range(6):
        untiled = codec.encode(image, model, rate, max_pixels=None, tile=MAX_TILE)
        tiled = codec.encode(image, model, rate, max_pixels=None)
        a, b = (codec.decode(s, max_pixels=None, max_memory=None) for s in (untiled, tiled))
        psnr = [10 * np.log10(255**2 / np.mean((image.astype(float) - x) ** 2)) for x in (a, b)]
        bpp = [8 * len(s) / image.shape[0] / image.shape[1] for s in (untiled, tiled)]
        diff = int(np.abs(a.astype(int) - b).max())
        print(f"{rate:5d} {bpp[0]:12.4f} {bpp[1]:10.4f} {psnr[1] - psnr[0]:9.4f} {diff:8d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["1024x1024", "2048x2048", "4000x3000",
                                                       "6000x4000", "8160x6120"])  # fmt: skip
    parser.add_argument("--untiled-up-to", type=float, default=5.0, help="megapixels")
    parser.add_argument("--rate", type=float, default=2.5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--child", choices=["encode", "decode"], help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    parser.add_argument("--stream", help=argparse.SUPPRESS)
    parser.add_argument("--tile", type=int, default=64, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.op = args.child
        child(args)
        return
    print(f"nic encode/decode at rate position {args.rate:g}, {args.threads} torch thread(s)")
    memory_table(args)
    if not args.skip_cost:
        tiling_cost(args)


if __name__ == "__main__":
    main()
