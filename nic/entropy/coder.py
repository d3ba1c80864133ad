"""Arithmetic coding of integer symbols with integer CDF tables (constriction's range coder).

Symbols are grouped by table index and coded group after group in index order: both sides know
the indexes before the symbols, so the order is the same at the decoder, and each group is one
vectorized call into the coder.
"""

from __future__ import annotations

from functools import cache

import constriction
import numpy as np

from nic.entropy.tables import PRECISION, CdfTables


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


def decode_symbols(data: bytes, indexes: np.ndarray, tables: CdfTables) -> np.ndarray:
    """Inverse of encode_symbols for the same indexes; returns int64 values shaped like indexes."""
    if len(data) % 4:
        raise ValueError("entropy-coded sub-stream length is not a multiple of 4 bytes")
    shape = np.shape(indexes)
    indexes = np.asarray(indexes, dtype=np.int64).ravel()
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype="<u4").copy())
    values = np.empty(indexes.size, dtype=np.int64)
    for t, pos in _groups(indexes):
        symbols = decoder.decode(_table_model(tables, t), pos.size)
        values[pos] = symbols.astype(np.int64) + tables.offsets[t]
    return values.reshape(shape)
