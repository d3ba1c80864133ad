"""Decoded pixels and decode time across torch thread counts, with the synthesis transform on
torch's thread count and on nic's fixed count (nic.codec.SYNTHESIS_THREADS).

    python benchmarks/decode_determinism.py [--threads 1 2 3 4] [--rates 0 2.5 5]
                                            [--repeats 2] [--model NAME]

scikit-image's astronaut (512 x 512), resized to 768 x 512 and to 1920 x 1080 (2.07 MP), is
encoded once at each rate position; a fresh process per thread count (torch.set_num_threads)
decodes every stream both ways, in turns. The first table counts the decoded values (3 per
pixel) that differ from the decode on the first thread count, summed over the rate positions;
the second gives the decode time (the whole codec.decode, the minimum of --repeats), summed
over the rate positions.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data as skdata

from nic import codec, zoo

SIZES = {"512x512": None, "768x512": (768, 512), "1920x1080": (1920, 1080)}
MODES = {"torch": None, "fixed": codec.SYNTHESIS_THREADS}
"""The synthesis on torch's thread count (nic.codec.SYNTHESIS_THREADS = None) and on nic's."""


def images() -> dict[str, np.ndarray]:
    astronaut = Image.fromarray(skdata.astronaut())
    return {
        name: np.asarray(
            astronaut if size is None else astronaut.resize(size, Image.Resampling.BICUBIC)
        )
        for name, size in SIZES.items()
    }


def worker(threads: int, folder: Path, model_name: str | None, repeats: int) -> None:
    """Decode every stream in `folder` on `threads` threads both ways, the two ways taking turns
    (so that a change of load on a shared machine weighs on both alike); save the pixels, print
    the times as JSON."""
    torch.set_num_threads(threads)
    model = zoo.load(model_name)
    times: dict[str, dict[str, float]] = {mode: {} for mode in MODES}
    for path in sorted(folder.glob("*.nic")):
        stream = path.read_bytes()
        for repeat in range(repeats):
            for mode, synthesis_threads in MODES.items():
                codec.SYNTHESIS_THREADS = synthesis_threads
                start = time.perf_counter()
                pixels = codec.decode(stream, model)
                seconds = time.perf_counter() - start
                times[mode][path.stem] = min(seconds, times[mode].get(path.stem, seconds))
                assert torch.get_num_threads() == threads
                if repeat == 0:
                    np.save(folder / f"{path.stem}-{mode}-{threads}.npy", pixels)
    print(json.dumps(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--rates", type=float, nargs="+", default=[0, 2.5, 5])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", help="zoo model name or model file (default: zoo default)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.folder, args.model, args.repeats)
        return
    model = zoo.load(args.model)
    print(
        f"model {model.name}, torch {torch.__version__}, rate positions "
        f"{' '.join(f'{r:g}' for r in args.rates)}, synthesis on torch's thread count "
        f"('torch') or on {codec.SYNTHESIS_THREADS} ('fixed')"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pictures = images()
        for name, image in pictures.items():
            for rate in args.rates:
                stream = codec.encode(image, model, rate)
                (folder / f"{name}-r{rate:g}.nic").write_bytes(stream)
        times = {}
        for threads in args.threads:
            command = [sys.executable, __file__, "--worker", str(threads), "--folder", tmp]
            command += ["--repeats", str(args.repeats)]
            command += ["--model", args.model] if args.model else []
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            times[threads] = json.loads(out.splitlines()[-1])

        first, others = args.threads[0], args.threads[1:]
        print(f"\ndecoded values that differ from the decode on {first} thread(s)")
        header = "".join(f"{f'{m} {t}':>10}" for m in MODES for t in others)
        print(f"{'image':12}{'values':>12}{header}")
        largest = 0
        for name, image in pictures.items():
            counts = []
            for mode in MODES:
                for threads in others:
                    diffs = [differences(folder, name, r, mode, first, threads) for r in args.rates]
                    counts.append(sum(int(np.count_nonzero(d)) for d in diffs))
                    largest = max([largest] + [int(d.max()) for d in diffs])
            values = image.size * len(args.rates)
            print(f"{name:12}{values:>12,}" + "".join(f"{c:>10}" for c in counts))
        print(f"largest difference: {largest} level(s)")

        print(f"\ndecode seconds (min of {args.repeats}), summed over the rate positions")
        header = "".join(f"{f'{m} {t}':>10}" for m in MODES for t in args.threads)
        print(f"{'image':12}{header}")
        for name in pictures:
            row = [
                sum(times[t][mode][f"{name}-r{r:g}"] for r in args.rates)
                for mode in MODES
                for t in args.threads
            ]
            print(f"{name:12}" + "".join(f"{v:10.2f}" for v in row))


def differences(
    folder: Path, name: str, rate: float, mode: str, first: int, threads: int
) -> np.ndarray:
    """|decode on `threads` threads - decode on `first`|, in levels."""
    a, b = (np.load(folder / f"{name}-r{rate:g}-{mode}-{t}.npy") for t in (first, threads))
    return np.abs(a.astype(np.int16) - b)


if __name__ == "__main__":
    main()
