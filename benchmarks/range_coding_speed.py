"""Range-coding speed of nic's latents: the symbol grouping (baseline against today's) and the
share of grouping and of constriction in encode_symbols and decode_symbols.

    python benchmarks/range_coding_speed.py [--model NAME] [--rate-point K] [--repeats N]

The latents are the zoo model's y and table indexes for a Kodak-sized photo (scikit-image's
astronaut mirrored to 768x512: a 1x192x32x48 latent) and a 4K-sized 1x192x135x240 latent tiled
from it. Each figure is the median of --repeats runs, in milliseconds. "constriction" is the
time of the coder's calls alone, on symbols grouped beforehand.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import constriction
import numpy as np
import skimage.data
import torch

from nic import codec, zoo
from nic.entropy import CdfTables, decode_symbols, encode_symbols
from nic.entropy.coder import _groups, _table_model, _table_symbols

UHD_LATENT = (135, 240)
"""Latent height and width of a 3840x2160 image (stride 16)."""


def baseline_groups(indexes: np.ndarray):
    """BASELINE, the grouping nic used before: an n log n stable argsort of the int64 indexes
    and np.unique on the sorted copy. (table, positions) pairs in increasing table order."""
    if indexes.size == 0:
        return
    order = np.argsort(indexes, kind="stable")
    sorted_idx = indexes[order]
    tables, starts = np.unique(sorted_idx, return_index=True)
    ends = np.append(starts[1:], sorted_idx.size)
    for t, a, b in zip(tables, starts, ends, strict=True):
        yield int(t), order[a:b]


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def kodak_latents(model_name: str | None, rate: float) -> tuple[np.ndarray, np.ndarray, CdfTables]:
    """int64 y, its table indexes and the tables for a 768x512 photo."""
    image = np.pad(skimage.data.astronaut(), ((0, 0), (0, 256), (0, 0)), mode="reflect")
    model = zoo.load(model_name)
    latents = codec.analyse(model, image, rate)
    return latents.y, latents.y_index, model.y_tables


def tiled(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A (1, C, h, w) array repeated over a (1, C, *size) one."""
    h, w = array.shape[2:]
    reps = (1, 1, -(-size[0] // h), -(-size[1] // w))
    return np.ascontiguousarray(np.tile(array, reps)[:, :, : size[0], : size[1]])


def constriction_ms(
    values: np.ndarray, indexes: np.ndarray, tables: CdfTables, repeats: int
) -> tuple[float, float]:
    """Median ms of the coder's own encode and decode calls, group by group."""
    groups = _groups(indexes.ravel(), tables)
    flat = values.ravel()
    coded = [
        (_table_symbols(flat[pos], tables, t)[0], _table_model(tables, t)) for t, pos in groups
    ]

    def encode() -> np.ndarray:
        coder = constriction.stream.queue.RangeEncoder()
        for symbols, model in coded:
            coder.encode(symbols, model)
        return coder.get_compressed()

    words = encode()

    def decode() -> None:
        coder = constriction.stream.queue.RangeDecoder(words)
        for symbols, model in coded:
            coder.decode(model, symbols.size)

    return _median_ms(encode, repeats), _median_ms(decode, repeats)


def measure(
    values: np.ndarray, indexes: np.ndarray, tables: CdfTables, repeats: int
) -> dict[str, float]:
    """Median ms of the baseline and today's grouping, of a whole encode and decode, and of the
    coder's calls alone."""
    flat = indexes.ravel()
    wide = flat.astype(np.int64)  # the baseline's encoder and decoder converted them first
    data = encode_symbols(values, indexes, tables)
    enc_coder, dec_coder = constriction_ms(values, indexes, tables, repeats)
    return {
        "baseline": _median_ms(lambda: list(baseline_groups(wide)), repeats),
        "grouping": _median_ms(lambda: _groups(flat, tables), repeats),
        "encode": _median_ms(lambda: encode_symbols(values, indexes, tables), repeats),
        "decode": _median_ms(lambda: decode_symbols(data, indexes, tables), repeats),
        "enc_coder": enc_coder,
        "dec_coder": dec_coder,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="zoo model name or model file (default: zoo default)")
    parser.add_argument("--rate-point", type=float, default=3, help="rate position (default 3)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    y, y_index, tables = kodak_latents(args.model, args.rate_point)
    latents = {"Kodak": (y, y_index), "4K": (tiled(y, UHD_LATENT), tiled(y_index, UHD_LATENT))}
    print(f"rate point {args.rate_point}, {len(tables)} tables, median of {args.repeats}, ms")
    columns = ("latent", "symbols", "baseline", "grouping", "speed-up", "encode", "decode")
    shares = ("group/enc", "group/dec", "coder/enc", "coder/dec")
    print(f"{columns[0]:20}" + "".join(f"{c:>10}" for c in columns[1:] + shares))
    for name, (values, indexes) in latents.items():
        m = measure(values, indexes, tables, args.repeats)
        row = [
            m["baseline"],
            m["grouping"],
            m["baseline"] / m["grouping"],
            m["encode"],
            m["decode"],
            100 * m["grouping"] / m["encode"],
            100 * m["grouping"] / m["decode"],
            100 * m["enc_coder"] / m["encode"],
            100 * m["dec_coder"] / m["decode"],
        ]
        label = f"{name} {'x'.join(map(str, values.shape))}"
        print(f"{label:20}{values.size:>10}" + "".join(f"{v:10.1f}" for v in row))
    print(
        "baseline: one step's grouping before (stable argsort of the int64 indexes), grouping: "
        "today's\nencode, decode: encode_symbols, decode_symbols today (the decoder groups once, "
        "its check re-encodes with that grouping)\ngroup/..., coder/...: % of encode, decode "
        "spent grouping, in constriction's calls"
    )


if __name__ == "__main__":
    main()
