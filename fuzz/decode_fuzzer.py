#!/usr/bin/env python3
"""Coverage-guided fuzzing of the nic decoder (atheris, libFuzzer), run outside the test suite.

    pip install atheris
    cp -r fuzz/corpus CORPUS_DIR
    for i in $(seq 100); do python fuzz/decode_fuzzer.py CORPUS_DIR -runs=10000 -timeout=10 \
        -rss_limit_mb=2048; done

(rounds of a fresh process each: atheris' instrumentation holds on to memory as it runs, which a
single long process would report as an out-of-memory of its own).

Half of the inputs are decoded as they are; the other half first get a valid CRC-32 (when the
header parses far enough to place it), so the fuzzer reaches the entropy decoder and beyond
instead of stopping at the CRC. The contract checked on every input: `nic.codec.decode` returns
uint8 pixels of the header's size or raises `BitstreamError`; any other exception is a crash,
a decode over -timeout seconds a hang, and memory over -rss_limit_mb a failure (libFuzzer's own
limits). The seed corpus holds real streams of both zoo models; `--make-corpus` rewrites it.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import atheris
import numpy  # noqa: F401  (imported before instrumentation: only nic is instrumented)
import torch  # noqa: F401

with atheris.instrument_imports(include=["nic"]):
    from nic import codec
    from nic.bitstream import BitstreamError, unpack

BUDGET = 256 * 256
"""Pixel budget of every decode: a forged header cannot make one exec slow or large."""
CORPUS = Path(__file__).parent / "corpus"


def with_valid_crc(data: bytes) -> bytes:
    """`data` with its CRC-32 field recomputed, where the header says where that field is."""
    if len(data) < 6:
        return data
    count_at = 6 + data[5] + 8 + 11
    if len(data) <= count_at:
        return data
    crc_at = count_at + 1 + 4 * data[count_at]
    if len(data) < crc_at + 4:
        return data
    crc = zlib.crc32(data[crc_at + 4 :], zlib.crc32(data[:crc_at]))
    return data[:crc_at] + struct.pack(">I", crc) + data[crc_at + 4 :]


def test_one_input(raw: bytes) -> None:
    if not raw:
        return
    data = with_valid_crc(raw[1:]) if raw[0] & 1 else raw[1:]
    try:
        image = codec.decode(data, max_pixels=BUDGET)
    except BitstreamError:
        return
    header, _ = unpack(data)
    if image.shape != (header.height, header.width, 3) or image.dtype.name != "uint8":
        raise AssertionError(
            f"decoded {image.shape} {image.dtype} for a {header.width}x{header.height} header"
        )


def make_corpus() -> None:
    """Seeds: streams of a small photo from each zoo model at a low and a high rate position,
    each prefixed by the mode byte that keeps its CRC as it is."""
    import numpy as np
    from skimage import data as skdata

    from nic import zoo

    CORPUS.mkdir(exist_ok=True)
    image = np.ascontiguousarray(skdata.chelsea()[100:140, 200:264])
    for entry in zoo.entries():
        model = zoo.load(entry.name)
        for rate in (0.5, model.max_rate_position):
            stream = codec.encode(image, model, rate)
            (CORPUS / f"{entry.name}-r{rate:g}.nic").write_bytes(b"\0" + stream)


if __name__ == "__main__":
    if sys.argv[1:] == ["--make-corpus"]:
        make_corpus()
    else:
        atheris.Setup(sys.argv, test_one_input)
        atheris.Fuzz()
