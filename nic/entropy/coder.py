"""Arithmetic coding of integer symbols with integer CDF tables (constriction's range coder).

A sub-stream is coded in steps (a context model decodes some latents before it knows the tables
of the others; a hyperprior has one step). Inside a step, symbols are grouped by table index and
coded group after group in index order, each group one vectorized call into the coder (the
grouping is a stable radix sort, linear in the symbols); both sides know the step's indexes
before its symbols, so the order is the same at the decoder.

Every value is coded, however far outside its table's support (nothing is clamped). Each table
gets one more symbol, the escape, whose probability 2**-PRECISION is taken from the table's most
probable symbol (an integer operation on the stored table, the same on every machine). A value
outside the support codes the escape; after the step's table symbols, each escaped value's signed
distance from the support's nearest end (never 0) is coded, in position order, on the same range
coder as an Elias-gamma-like code: its zigzag map's bit length n (uniform over 0 .. 31), then
its n - 1 lower bits in whole bytes, most significant first (uniform over 256). This follows the
overflow coding of CompressAI's entropy models (Bégaint et al., "CompressAI", arXiv:2011.03029),
without their bypass coder.

The decoder accepts only what the encoder writes: a sub-stream too short to hold its symbols is
refused before decoding, and the decoded symbols must re-encode to exactly the sub-stream's
bytes, so a padded sub-stream is always refused, and a cut, spliced or otherwise altered one is
refused unless it happens to be exactly the coder's output for other symbols (rare; such a
sub-stream is indistinguishable from a valid one).
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
ESCAPE_LENGTHS = 32
"""An escaped value's zigzag distance has a bit length of 0 .. 31: it is below 2**31."""
MAX_ESCAPE = (1 << (ESCAPE_LENGTHS - 1)) - 1


class EntropyDecodingError(ValueError):
    """A sub-stream is not what the range coder writes for any symbols under the given tables."""


def _model(counts: np.ndarray) -> constriction.stream.model.Categorical:
    # Probabilities are exact multiples of 2**-PRECISION that sum to one, so the coder's own
    # fixed-point quantization reproduces the integer table exactly.
    probabilities = counts.astype(np.float64) / (1 << PRECISION)
    return constriction.stream.model.Categorical(probabilities, perfect=False)


def _escaped_counts(counts: np.ndarray) -> np.ndarray:
    """A table's int32 counts with the escape symbol appended: one count taken from the most
    probable symbol (the first of equals)."""
    out = np.append(counts, np.int32(1))
    out[int(np.argmax(counts))] -= 1
    return out


@cache
def _escaped_model(counts: bytes) -> constriction.stream.model.Categorical:
    """The model of a table given by its int32 counts' bytes (built once per table)."""
    return _model(_escaped_counts(np.frombuffer(counts, dtype=np.int32)))


def _table_model(tables: CdfTables, t: int) -> constriction.stream.model.Categorical:
    counts = tables.counts[t, : tables.lengths[t]].astype(np.int32, copy=False)
    return _escaped_model(counts.tobytes())


_ESCAPE_LENGTH_MODEL = _model(np.full(ESCAPE_LENGTHS, (1 << PRECISION) // ESCAPE_LENGTHS))
_BYTE_MODEL = _model(np.full(256, (1 << PRECISION) // 256))


_Groups = list[tuple[int, np.ndarray]]
"""(table, positions) pairs: a step's symbols grouped by table."""


def _groups(indexes: np.ndarray, tables: CdfTables) -> _Groups:
    """(table, positions) for each table that codes a symbol, in table order, each table's
    positions increasing. Integer indexes in; ValueError for one that names no table.

    Linear in the number of symbols: a stable argsort of the narrowest unsigned dtype that holds
    the indexes is numpy's radix sort (of wider integers, an n log n sort), and bincount gives
    each table's run in it."""
    count = len(tables)
    if indexes.size and (indexes.min() < 0 or indexes.max() >= count):
        raise ValueError(f"a table index lies outside 0 .. {count - 1}")
    keys = indexes.astype(np.min_scalar_type(max(count - 1, 0)), copy=False)
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(indexes, minlength=count)
    ends = np.cumsum(counts)
    starts = ends - counts
    return [(t, order[a:b]) for t, (a, b) in enumerate(zip(starts, ends, strict=True)) if b > a]


def _positions(parts: list[np.ndarray]) -> np.ndarray:
    """The positions gathered group by group, back in position order."""
    return np.sort(np.concatenate(parts))


def _zigzag(d: np.ndarray) -> np.ndarray:
    return np.where(d >= 0, 2 * d, -2 * d - 1)


def _unzigzag(u: np.ndarray) -> np.ndarray:
    return np.where(u % 2 == 0, u // 2, -(u + 1) // 2)


def _bit_lengths(u: np.ndarray) -> np.ndarray:
    """Bit length of each non-negative int64 below 2**53 (frexp's exponent is exact there)."""
    return np.where(u > 0, np.frexp(u.astype(np.float64))[1], 0).astype(np.int64)


def _leading_ones(lengths: np.ndarray) -> np.ndarray:
    """2**(n - 1) for each bit length n > 0, else 0."""
    return np.where(lengths > 0, np.left_shift(1, np.maximum(lengths - 1, 0)), 0)


def _escape_bytes(lengths: np.ndarray) -> np.ndarray:
    """Whole bytes that carry the n - 1 lower bits of each escape of bit length n."""
    return np.maximum(lengths - 1 + 7, 0) // 8


def _support(tables: CdfTables, indexes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int64 first and last value that each index's table codes."""
    low = tables.offsets[indexes].astype(np.int64)
    return low, low + tables.lengths[indexes] - 1


def _flat_integers(array: np.ndarray) -> np.ndarray:
    """The array raveled: in its own integer dtype (no full-size conversion), else as int64."""
    array = np.asarray(array)
    return (array if array.dtype.kind in "iu" else array.astype(np.int64)).ravel()


def _table_symbols(values: np.ndarray, tables: CdfTables, t: int) -> tuple[np.ndarray, np.ndarray]:
    """int32 symbols of integer values under table t (the escape for a value outside its
    support), and where the escapes are."""
    symbols = np.subtract(values, tables.offsets[t], dtype=np.int64)  # never overflows
    length = tables.lengths[t]
    outside = symbols.view(np.uint64) >= np.uint64(length)  # a negative symbol wraps above
    symbols[outside] = length
    return symbols.astype(np.int32), outside


class SymbolEncoder:
    """Codes steps of (values, indexes) under CdfTables into one sub-stream."""

    def __init__(self) -> None:
        self._coder = constriction.stream.queue.RangeEncoder()

    def encode(self, values: np.ndarray, indexes: np.ndarray, tables: CdfTables) -> None:
        """Code one step: integer values of any shape and their table indexes (same shape).

        Raises ValueError for a value more than 2**30 beyond its table's support, or for an
        index that names no table."""
        values, indexes = _flat_integers(values), _flat_integers(indexes)
        self._encode_grouped(values, indexes, _groups(indexes, tables), tables)

    def _encode_grouped(
        self, values: np.ndarray, indexes: np.ndarray, groups: _Groups, tables: CdfTables
    ) -> None:
        """Code one step already grouped (the decoder's check re-encodes with its grouping)."""
        escaped = []
        for t, pos in groups:
            symbols, outside = _table_symbols(values[pos], tables, t)
            self._coder.encode(symbols, _table_model(tables, t))
            if outside.any():
                escaped.append(pos[outside])
        if escaped:
            self._encode_escapes(values, indexes, _positions(escaped), tables)

    def _encode_escapes(
        self, values: np.ndarray, indexes: np.ndarray, escaped: np.ndarray, tables: CdfTables
    ) -> None:
        """Code the distances beyond their supports of the values at `escaped` (increasing)."""
        low, high = _support(tables, indexes[escaped])
        outer = values[escaped].astype(np.int64)
        beyond = np.where(outer < low, outer - low, outer - high)  # never 0
        u = _zigzag(beyond)
        if u.max() > MAX_ESCAPE:
            raise ValueError(f"a value lies {int(np.abs(beyond).max())} beyond its table")
        lengths = _bit_lengths(u)
        self._coder.encode(lengths.astype(np.int32), _ESCAPE_LENGTH_MODEL)
        below = u - _leading_ones(lengths)
        counts = _escape_bytes(lengths)
        owner = np.repeat(np.arange(u.size), counts)  # the escape each byte belongs to
        place = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
        chunks = (
            below[owner] >> (8 * (counts[owner] - 1 - place))
        ) & 0xFF  # most significant first
        if chunks.size:
            self._coder.encode(chunks.astype(np.int32), _BYTE_MODEL)

    def to_bytes(self) -> bytes:
        return self._coder.get_compressed().astype("<u4").tobytes()


class SymbolDecoder:
    """Decodes the steps a SymbolEncoder coded, in the same order, from one sub-stream.

    `finish()` must follow the last step: it checks that the steps re-encode to exactly the
    sub-stream's bytes.
    """

    def __init__(self, data: bytes, least_bits: float, what: str = "entropy-coded") -> None:
        """least_bits: the fewest bits all of the sub-stream's symbols can cost (min_bits);
        a shorter sub-stream is refused at once. Raises EntropyDecodingError."""
        if len(data) % 4:
            raise EntropyDecodingError(f"{what} sub-stream length is not a multiple of 4 bytes")
        check_size(len(data), least_bits, what)
        self.data, self.what = bytes(data), what
        self._coder = constriction.stream.queue.RangeDecoder(
            np.frombuffer(self.data, dtype="<u4").copy()
        )
        # Each decoded step is re-encoded at once (finish compares the bytes), so that memory
        # holds the sub-stream's bytes, not every decoded symbol.
        self._reencoder: SymbolEncoder | None = SymbolEncoder()

    def decode(self, indexes: np.ndarray, tables: CdfTables) -> np.ndarray:
        """The next step's int64 values, shaped like `indexes`. Raises EntropyDecodingError,
        or ValueError for an index that names no table."""
        shape = np.shape(indexes)
        indexes = _flat_integers(indexes)
        groups = _groups(indexes, tables)
        values = np.empty(indexes.size, dtype=np.int64)
        escaped = []
        try:
            for t, pos in groups:
                symbols = self._coder.decode(_table_model(tables, t), pos.size)
                values[pos] = symbols + np.int64(tables.offsets[t])
                hits = symbols == tables.lengths[t]
                if hits.any():
                    escaped.append(pos[hits])
            if escaped:
                self._decode_escapes(values, indexes, _positions(escaped), tables)
        except (AssertionError, ValueError, RuntimeError, OverflowError) as e:
            # constriction reports an undecodable sub-stream with any of these.
            raise EntropyDecodingError(f"{self.what} sub-stream cannot be decoded ({e})") from None
        if self._reencoder is not None:
            try:
                self._reencoder._encode_grouped(values, indexes, groups, tables)
            except ValueError:  # a value no encoder writes
                self._reencoder = None
        return values.reshape(shape)

    def _decode_escapes(
        self, values: np.ndarray, indexes: np.ndarray, escaped: np.ndarray, tables: CdfTables
    ) -> None:
        """Decode the values at `escaped` (increasing) from their distances beyond the support."""
        lengths = self._coder.decode(_ESCAPE_LENGTH_MODEL, escaped.size).astype(np.int64)
        counts = _escape_bytes(lengths)
        chunks = self._coder.decode(_BYTE_MODEL, int(counts.sum())).astype(np.int64)
        u = np.zeros(escaped.size, dtype=np.int64)
        starts = np.cumsum(counts) - counts
        for place in range(int(counts.max(initial=0))):  # at most 4 bytes each
            more = counts > place
            u[more] = (u[more] << 8) | chunks[starts[more] + place]
        u |= _leading_ones(lengths)
        beyond = _unzigzag(u)
        low, high = _support(tables, indexes[escaped])
        values[escaped] = np.where(beyond < 0, low + beyond, high + beyond)

    def finish(self) -> None:
        """Raise EntropyDecodingError unless the decoded steps are exactly what the sub-stream
        codes (nothing missing, nothing left over, nothing altered)."""
        if self._reencoder is None or self._reencoder.to_bytes() != self.data:
            raise EntropyDecodingError(
                f"{self.what} sub-stream is not the range coder's output for its symbols "
                "(cut, padded or altered)"
            )


def encode_symbols(values: np.ndarray, indexes: np.ndarray, tables: CdfTables) -> bytes:
    """Code integer values under their tables (one step) into a byte string."""
    encoder = SymbolEncoder()
    encoder.encode(values, indexes, tables)
    return encoder.to_bytes()


def min_bits(indexes: np.ndarray, tables: CdfTables) -> float:
    """A lower bound on the bits any values cost under their tables: each value's table at its
    most probable symbol, counted as stored (the coder's escape takes one count from it, so the
    real cost is a little higher). int64 indexes of any shape; float bits."""
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
    decoded values.
    """
    decoder = SymbolDecoder(data, min_bits(indexes, tables), what)
    values = decoder.decode(indexes, tables)
    decoder.finish()
    return values
