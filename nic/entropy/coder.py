"""Arithmetic coding of integer symbols with integer CDF tables (constriction's range coder).

Symbols are grouped by table index and coded group after group in index order: both sides know
the indexes before the symbols, so the order is the same at the decoder, and each group is one
vectorized call into the coder.

The decoder accepts only what the encoder writes: a sub-stream too short to hold its symbols is
refused before decoding, and the decoded symbols must re-encode to exactly the sub-stream's
bytes, so a cut, padded, spliced or otherwise altered sub-stream is refused instead of decoding
to other pixels.
"""

from __future__ import annotations

from functools import cache

import constriction
import numpy as np

from nic.entropy.tables import PRECISION, CdfTables

WORD_BITS = 32
"""The range coder writes 32-bit words."""
SIZE_SLACK_BITS = 2 * WORD_BITS
"""How far below the symbols' least possible information content a sub-stream may be and still
be decoded. The range coder's output is never shorter than the information content of what it
codes (measured); two words of slack keep the check loose."""


class EntropyDecodingError(ValueError):
    """A sub-stream is not what the range coder writes for any symbols under the given tables."""


@cache
def _model(counts: bytes) -> constriction.stream.model.Categorical:
    # Probabilities are exact multiples of 2**-PRECISION that sum to one, so the coder's own
    # fixed-point quantization reproduces the integer table exactly.
    probabilities = np.frombuffer(counts, dtype=np.int32).astype(np.float64) / (1 << PRECISION)
    return constriction.stream.model.Categorical(probabilities, perfect=False)


def _table_model(tables: CdfTables, t: int) -> constriction.stream.model.Categorical:
    return _model(tables.counts[t, : tables.lengths[t]].tobytes())


def _groups(indexes: np.ndarray):
    """(table, positions) pairs in increasing table order."""
    order = np.argsort(indexes, kind="stable")
    sorted_idx = indexes[order]
    tables, starts = np.unique(sorted_idx, return_index=True)
    ends = np.append(starts[1:], sorted_idx.size)
    for t, a, b in zip(tables, starts, ends, strict=True):
        yield int(t), order[a:b]


def encode_symbols(values: np.ndarray, indexes: np.ndarray, tables: CdfTables) -> bytes:
    """Code integer values (already clamped into their tables' supports) into a byte string."""
    values = np.asarray(values, dtype=np.int64).ravel()
    indexes = np.asarray(indexes, dtype=np.int64).ravel()
    encoder = constriction.stream.queue.RangeEncoder()
    for t, pos in _groups(indexes):
        symbols = (values[pos] - tables.offsets[t]).astype(np.int32)
        encoder.encode(symbols, _table_model(tables, t))
    return encoder.get_compressed().astype("<u4").tobytes()


def min_bits(indexes: np.ndarray, tables: CdfTables) -> float:
    """The fewest bits any values can cost under their tables: each value's table at its most
    probable symbol. int64 indexes of any shape; float bits."""
    counts = np.bincount(np.asarray(indexes, dtype=np.int64).ravel(), minlength=len(tables))
    return float(counts @ tables.min_symbol_bits)


def check_size(data_bytes: int, least_bits: float, what: str) -> None:
    """Refuse a sub-stream of `data_bytes` bytes that cannot hold symbols costing at least
    `least_bits` bits (an impossible stream, refused before any decoding work)."""
    if 8 * data_bytes + SIZE_SLACK_BITS < least_bits:
        raise EntropyDecodingError(
            f"{what} sub-stream of {data_bytes} bytes is too short for its symbols "
            f"(at least {least_bits / 8:.0f} bytes)"
        )


def decode_symbols(
    data: bytes, indexes: np.ndarray, tables: CdfTables, what: str = "entropy-coded"
) -> np.ndarray:
    """Inverse of encode_symbols for the same indexes; returns int64 values shaped like indexes.

    Raises EntropyDecodingError (naming the sub-stream `what`) when the bytes are too few for
    the symbols, cannot be decoded, or are not exactly what encode_symbols writes for the
    decoded values (nothing missing, nothing left over, nothing altered).
    """
    if len(data) % 4:
        raise EntropyDecodingError(f"{what} sub-stream length is not a multiple of 4 bytes")
    shape = np.shape(indexes)
    indexes = np.asarray(indexes, dtype=np.int64).ravel()
    check_size(len(data), min_bits(indexes, tables), what)
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype="<u4").copy())
    values = np.empty(indexes.size, dtype=np.int64)
    try:
        for t, pos in _groups(indexes):
            symbols = decoder.decode(_table_model(tables, t), pos.size)
            values[pos] = symbols.astype(np.int64) + tables.offsets[t]
    except (AssertionError, ValueError, RuntimeError, OverflowError) as e:
        # constriction reports an undecodable sub-stream with any of these.
        raise EntropyDecodingError(f"{what} sub-stream cannot be decoded ({e})") from None
    if encode_symbols(values, indexes, tables) != bytes(data):
        raise EntropyDecodingError(
            f"{what} sub-stream is not the range coder's output for its symbols "
            "(cut, padded or altered)"
        )
    return values.reshape(shape)
