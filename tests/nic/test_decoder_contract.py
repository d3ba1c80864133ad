"""The decoder's contract on hostile input: any byte string, and any mutation of a real stream
(re-packed with a valid CRC or not), decodes to an image of the header's size or raises
BitstreamError, quickly and without growing memory; a stream whose payload is not exactly what the
encoder wrote is refused unless it happens to be the range coder's exact output for other
symbols (then it decodes like any valid stream).

Hypothesis runs derandomized, with no deadline and no example database when CI=true.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nic import codec, zoo
from nic.bitstream import MAX_MODEL_INDEX, BitstreamError, Header, pack, unpack, varint

GOLDEN = Path(__file__).parent / "golden"
STREAMS = sorted(GOLDEN.glob("*.nic"))
SMALL_BUDGET = 256 * 256
"""Pixel budget for the property tests: a mutated header cannot make them allocate much."""
TIME_BOUND_S = 10.0
"""A decode of these small streams takes milliseconds; this only catches a hang."""
RSS_GROWTH_BOUND_MB = 200

settings.register_profile(
    "contract",
    derandomize=os.environ.get("CI") == "true",
    database=None if os.environ.get("CI") == "true" else settings.default.database,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CONTRACT = settings.get_profile("contract")


def _rss_mb() -> float:
    """The process's resident memory now (Linux), or its peak so far elsewhere."""
    statm = Path("/proc/self/statm")
    if statm.exists():
        return int(statm.read_text().split()[1]) * resource.getpagesize() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture(scope="module", autouse=True)
def _models_loaded():
    """Load the zoo models once, so that memory measured below is the decoder's alone."""
    for stream in STREAMS:
        codec.decode(stream.read_bytes())


def _check_contract(data: bytes) -> np.ndarray | None:
    """decode(data) returns the header's size or raises BitstreamError, within the bounds."""
    start = time.perf_counter()
    try:
        image = codec.decode(data, max_pixels=SMALL_BUDGET)
    except BitstreamError:
        image = None
    assert time.perf_counter() - start < TIME_BOUND_S
    if image is not None:
        header, _ = unpack(data)
        assert image.shape == (header.height, header.width, 3) and image.dtype == np.uint8
    return image


def _repack(header: Header, z: bytes, y: bytes) -> bytes:
    """A stream with these fields and sub-streams and a valid CRC (pack checks nothing else)."""
    return pack(header, [z, y])


@given(st.binary(max_size=4096))
@CONTRACT
def test_any_byte_string_is_decoded_or_refused(data):
    _check_contract(data)


@given(
    stream=st.sampled_from(STREAMS),
    edits=st.lists(
        st.tuples(st.sampled_from(["flip", "insert", "delete"]), st.integers(0, 1 << 16)),
        min_size=1,
        max_size=8,
    ),
)
@CONTRACT
def test_raw_mutations_of_a_real_stream_are_refused(stream, edits):
    data = bytearray(stream.read_bytes())
    original = bytes(data)
    for kind, where in edits:
        i = where % (len(data) + 1)
        if kind == "insert":
            data.insert(i, where & 0xFF)
        elif data and i < len(data):
            if kind == "flip":
                data[i] ^= 1 << (where % 8)
            else:
                del data[i]
    if bytes(data) != original:
        with pytest.raises(BitstreamError):
            codec.decode(bytes(data), max_pixels=SMALL_BUDGET)


def _words(data: bytes) -> list[bytes]:
    return [data[i : i + 4] for i in range(0, len(data), 4)]


@st.composite
def payload_mutations(draw, kinds: tuple[str, ...]):
    """(stream, mutated z, mutated y): sub-streams cut at a word, emptied, swapped, spliced,
    extended or with words replaced (the kinds asked for); always different from the original
    payload."""
    stream = draw(st.sampled_from(STREAMS)).read_bytes()
    header, (z, y) = unpack(stream)
    subs = [z, y]
    kind = draw(st.sampled_from(kinds))
    which = draw(st.integers(0, 1))
    words = _words(subs[which])
    if kind == "cut":
        subs[which] = b"".join(words[: draw(st.integers(0, max(len(words) - 1, 0)))])
    elif kind == "empty":
        subs[which] = b""
    elif kind == "swap":
        subs = [y, z]
    elif kind == "splice":
        other = unpack(draw(st.sampled_from(STREAMS)).read_bytes())[1][which]
        cut = draw(st.integers(0, len(words)))
        subs[which] = b"".join(words[:cut] + _words(other)[cut:])
    elif kind == "extend":
        subs[which] += draw(st.binary(min_size=1, max_size=4).map(lambda b: b.ljust(4, b"\0")))
    else:
        i = draw(st.integers(0, max(len(words) - 1, 0)))
        new = draw(st.binary(min_size=4, max_size=4))
        subs[which] = b"".join(words[:i] + [new] + words[i + 1 :])
    if subs == [z, y]:
        subs[which] += b"\0\0\0\0"
    return header, subs


@given(payload_mutations(("extend", "empty")))
@CONTRACT
def test_a_padded_or_emptied_payload_with_a_valid_crc_never_decodes(mutation):
    """Bytes the range decoder never reads, or too few for the symbols: always refused."""
    header, (z, y) = mutation
    with pytest.raises(BitstreamError):
        codec.decode(_repack(header, z, y), max_pixels=SMALL_BUDGET)


@given(payload_mutations(("cut", "swap", "splice", "replace")))
@CONTRACT
def test_an_otherwise_altered_payload_is_refused_or_is_a_canonical_stream(mutation):
    """Cut, swapped, spliced or overwritten sub-streams are refused unless they happen to be
    exactly the range coder's output for other symbols (rare: 0 of 326 random alterations
    decoded, see docs/codec.md); such a stream decodes like any valid one, to the header's size.
    A CRC recomputed by whoever altered the payload cannot tell the two apart."""
    header, (z, y) = mutation
    try:
        image = codec.decode(_repack(header, z, y), max_pixels=SMALL_BUDGET)
    except BitstreamError:
        return
    assert image.dtype == np.uint8 and image.shape == (header.height, header.width, 3)


@given(
    stream=st.sampled_from(STREAMS),
    width=st.integers(1, 1 << 16),
    height=st.integers(1, 1 << 16),
    gain_code=st.integers(0, 0xFFFF),
    network=st.integers(0, 0xFF),
    z_words=st.integers(0, 64),
    y_words=st.integers(0, 64),
)
@CONTRACT
def test_any_header_with_a_valid_crc_is_decoded_or_refused(
    stream, width, height, gain_code, network, z_words, y_words
):
    header, (z, y) = unpack(stream.read_bytes())
    if width * height > 1 << 25:
        height = max(1, (1 << 25) // width)
    forged = dataclasses.replace(
        header, network=network, gain_code=gain_code, width=width, height=height
    )
    rng = np.random.default_rng(width ^ height ^ gain_code)
    z2 = z if z_words == 0 else rng.integers(0, 256, 4 * z_words, dtype=np.uint8).tobytes()
    y2 = y if y_words == 0 else rng.integers(0, 256, 4 * y_words, dtype=np.uint8).tobytes()
    _check_contract(_repack(forged, z2, y2))


def test_memory_stays_bounded_over_many_hostile_streams():
    """A thousand forged streams (valid CRC, every size up to the budget, random payloads)
    leave the process's peak memory where one small decode left it."""
    rng = np.random.default_rng(0)
    header, _ = unpack(STREAMS[0].read_bytes())
    for i in range(1000):
        if i == 100:  # after the first sizes have been seen (allocator caches warm)
            base = _rss_mb()
        w, h = (int(v) for v in rng.integers(1, 257, 2))
        z, y = (
            rng.integers(0, 256, 4 * int(rng.integers(0, 40)), np.uint8).tobytes() for _ in "zy"
        )
        forged = dataclasses.replace(header, gain_code=int(rng.integers(0, 256)), width=w, height=h)
        _check_contract(_repack(forged, z, y))
    assert _rss_mb() - base < RSS_GROWTH_BOUND_MB


def _forged(model_index: int, weights_hash: bytes, width: int, height: int, z=b"", y=b"") -> bytes:
    return _repack(Header(model_index, weights_hash, 0, 0, width, height), z, y)


def test_a_tiny_stream_claiming_a_huge_image_is_refused_at_once():
    model = zoo.load()
    start = time.perf_counter()
    # 4096 x 2048 is inside the default budgets: the sub-streams' sizes refuse it.
    with pytest.raises(BitstreamError, match="too short"):
        codec.decode(_forged(zoo.index_of(model), model.weights_hash, 4096, 2048))
    # Beyond a budget: refused from the header alone, and the message says how to raise it.
    with pytest.raises(BitstreamError, match="--max-memory"):  # untiled: 19 GB
        codec.decode(_forged(zoo.index_of(model), model.weights_hash, 8192, 4096))
    with pytest.raises(BitstreamError, match="--max-pixels"):
        codec.decode(_forged(zoo.index_of(model), model.weights_hash, 16384, 8192))
    assert time.perf_counter() - start < 2


def test_the_pixel_budget_is_the_callers():
    stream = STREAMS[0].read_bytes()
    header, _ = unpack(stream)
    coded = codec.coded_pixels(header.width, header.height)
    with pytest.raises(BitstreamError, match="budget"):
        codec.decode(stream, max_pixels=coded - 1)
    assert codec.decode(stream, max_pixels=coded).shape[:2] == (header.height, header.width)


def test_the_budget_counts_the_padded_area():
    """A 1-pixel-high image is coded 64 rows high: its header alone must not allocate more."""
    model = zoo.load()
    with pytest.raises(BitstreamError, match="coded as 4,194,304 pixels"):
        codec.decode(_forged(zoo.index_of(model), model.weights_hash, 65536, 1), max_pixels=65536)


@pytest.mark.parametrize("model_index", [0, 3, 999, MAX_MODEL_INDEX])
def test_a_stream_may_only_name_a_registered_model(model_index):
    """A header names a model by zoo index only: nothing in it is ever a path."""
    stream = _forged(model_index, zoo.load().weights_hash, 64, 64)
    with pytest.raises(BitstreamError, match="not in the zoo|does not have"):
        codec.decode(stream)


def test_a_model_index_beyond_the_format_is_refused_by_the_container():
    body = bytearray(_forged(1, b"\0" * 4, 64, 64))
    # Splice an index of MAX_MODEL_INDEX + 1 in (pack itself refuses it) and fix the CRC.
    head = body[:5] + varint(MAX_MODEL_INDEX + 1) + body[6:]
    crc_at = len(head) - 4
    head[crc_at:] = struct.pack(">I", zlib.crc32(bytes(head[:crc_at])))
    with pytest.raises(BitstreamError, match="model index"):
        codec.decode(bytes(head))
    with pytest.raises(ValueError, match="model index"):
        pack(Header(MAX_MODEL_INDEX + 1, b"\0" * 4, 0, 0, 1, 1), [b"", b""])


def test_one_overwritten_word_can_be_a_canonical_stream_of_other_symbols():
    """The case Hypothesis found: y's second word overwritten, and the result is exactly what
    the range coder writes for other symbols, so it decodes (to other pixels of the same size)."""
    stream = (GOLDEN / "chelsea-48x40-nic-masked-n128-v2-r1.25.nic").read_bytes()
    header, (z, y) = unpack(stream)
    altered = y[:4] + bytes.fromhex("daf5182a") + y[8:]
    assert altered != y
    image = codec.decode(_repack(header, z, altered), max_pixels=SMALL_BUDGET)
    assert image.shape == (header.height, header.width, 3)
    assert not np.array_equal(image, codec.decode(stream, max_pixels=SMALL_BUDGET))
