"""Encode/decode time of a nic model per image and per megapixel, with the entropy-coding share.

    python benchmarks/codec_speed.py [--images DIR] [--model NAME] [--rate-point K] [--repeats N]

Each figure is the median of --repeats runs with torch on --threads threads (default 1, as
`ctc run` and `ctc complexity` time every job: on a shared 2-core machine 2 threads ran about 2x
slower than 1, docs/ctc.md "Threads"). The entropy-coding share is the time spent in the range
coder (z and y sub-streams) over the whole encode or decode. --images is a folder or a ctc
dataset name (default: "skimage", the photos inside the scikit-image wheel).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from ctc.datasets import resolve_dataset
from nic import codec, zoo
from nic.entropy import decode_symbols, encode_symbols
from nic.model_file import CodecModel


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(model: CodecModel, image: np.ndarray, k: int, repeats: int) -> dict[str, float]:
    """Median seconds of the whole encode and decode, and of their range-coding parts."""
    codec.encode(image, model, k)  # warm-up
    stream = codec.encode(image, model, k)
    lat = codec.analyse(model, image, k)
    z_tables = model.rate_network(codec.gain_code(model, k)).z_tables
    z_idx = np.broadcast_to(np.arange(lat.z.shape[1])[None, :, None, None], lat.z.shape)
    z_stream = encode_symbols(lat.z, z_idx, z_tables)
    y_stream = encode_symbols(lat.y, lat.y_index, model.y_tables)

    def entropy_encode() -> None:
        encode_symbols(lat.z, z_idx, z_tables)
        encode_symbols(lat.y, lat.y_index, model.y_tables)

    def entropy_decode() -> None:
        decode_symbols(z_stream, z_idx, z_tables)
        decode_symbols(y_stream, lat.y_index, model.y_tables)

    return {
        "bytes": len(stream),
        "enc": _median_time(lambda: codec.encode(image, model, k), repeats),
        "dec": _median_time(lambda: codec.decode(stream, model), repeats),
        "ec_enc": _median_time(entropy_encode, repeats),
        "ec_dec": _median_time(entropy_decode, repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--images", default="skimage", help="a folder of images or a ctc dataset name"
    )
    parser.add_argument("--model", help="zoo model name or model file (default: zoo default)")
    parser.add_argument("--rate-point", type=float, default=3, help="rate position (default 3)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = zoo.load(args.model)
    k = args.rate_point
    print(
        f"model {model.name}, rate point {k}, torch {torch.__version__}, "
        f"{args.threads} threads, median of {args.repeats}"
    )
    columns = (
        "image",
        "size",
        "bpp",
        "enc s",
        "dec s",
        "enc s/MP",
        "dec s/MP",
        "EC enc %",
        "EC dec %",
    )
    print(f"{columns[0]:14}" + "".join(f"{c:>10}" for c in columns[1:]))
    rows = []
    for item in resolve_dataset(args.images).images:
        name, image = item.name, item.load()
        h, w = image.shape[:2]
        m = measure(model, image, k, args.repeats)
        mp = h * w / 1e6
        row = [
            8 * m["bytes"] / (w * h),
            m["enc"],
            m["dec"],
            m["enc"] / mp,
            m["dec"] / mp,
            100 * m["ec_enc"] / m["enc"],
            100 * m["ec_dec"] / m["dec"],
        ]
        rows.append(row)
        print(f"{name[:14]:14}{f'{w}x{h}':>10}" + "".join(f"{v:10.3f}" for v in row))
    medians = [statistics.median(col) for col in zip(*rows, strict=True)]
    print(f"{'median':14}{'':>10}" + "".join(f"{v:10.3f}" for v in medians))


if __name__ == "__main__":
    main()
