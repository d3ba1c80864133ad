"""Arithmetic coding of integer symbols with integer CDF tables (constriction's range coder).

A sub-stream is coded in steps (a context model decodes some latents before it knows the tables
of the others; a hyperprior has one step). Inside a step, symbols are grouped by table index and
coded group after group in index order, each group one vectorized call into the coder; both
sides know the step's indexes before its symbols, so the order is the same at the decoder.

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


@cache
def _model(counts: bytes) -> constriction.stream.model.Categorical:
    # Probabilities are exact multiples of 2**-PRECISION that sum to one, so the coder's own
    # fixed-point quantization reproduces the integer table exactly.
    probabilities = np.frombuffer(counts, dtype=np.int32).astype(np.float64) / (1 << PRECISION)
    return constriction.stream.model.Categorical(probabilities, perfect=False)


def _escaped_counts(counts: np.ndarray) -> np.ndarray:
    """A table's int32 counts with the escape symbol appended: one count taken from the most
    probable symbol (the first of equals)."""
    out = np.append(np.asarray(counts, dtype=np.int32), np.int32(1))
    out[int(np.argmax(counts))] -= 1
    return out


def _table_model(tables: CdfTables, t: int) -> constriction.stream.model.Categorical:
    return _model(_escaped_counts(tables.counts[t, : tables.lengths[t]]).tobytes())


_ESCAPE_LENGTH_MODEL = _model(
    np.full(ESCAPE_LENGTHS, (1 << PRECISION) // ESCAPE_LENGTHS, np.int32).tobytes()
)
_BYTE_MODEL = _model(np.full(256, (1 << PRECISION) // 256, np.int32).tobytes())


def _groups(indexes: np.ndarray):
    """(table, positions) pairs in increasing table order (none for no indexes)."""
    if indexes.size == 0:
        return
    order = np.argsort(indexes, kind="stable")
    sorted_idx = indexes[order]
    tables, starts = np.unique(sorted_idx, return_index=True)
    ends = np.append(starts[1:], sorted_idx.size)
    for t, a, b in zip(tables, starts, ends, strict=True):
        yield int(t), order[a:b]


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


class SymbolEncoder:
    """Codes steps of (values, indexes) under CdfTables into one sub-stream."""

    def __init__(self) -> None:
        self._coder = constriction.stream.queue.RangeEncoder()

    def encode(self, values: np.ndarray, indexes: np.ndarray, tables: CdfTables) -> None:
        """Code one step: int64 values of any shape and their table indexes (same shape).

        Raises ValueError for a value more than 2**30 beyond its table's support."""
        values = np.asarray(values, dtype=np.int64).ravel()
        indexes = np.asarray(indexes, dtype=np.int64).ravel()
        low = tables.offsets[indexes].astype(np.int64)
        high = low + tables.lengths[indexes] - 1
        symbols = values - low
        outside = (values < low) | (values > high)
        symbols[outside] = tables.lengths[indexes[outside]]
        for t, pos in _groups(indexes):
            self._coder.encode(symbols[pos].astype(np.int32), _table_model(tables, t))
        if not outside.any():
            return
        beyond = np.where(values < low, values - low, values - high)[outside]  # never 0
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
        self._steps: list[tuple[np.ndarray, np.ndarray, CdfTables]] = []

    def decode(self, indexes: np.ndarray, tables: CdfTables) -> np.ndarray:
        """The next step's int64 values, shaped like `indexes`. Raises EntropyDecodingError."""
        shape = np.shape(indexes)
        indexes = np.asarray(indexes, dtype=np.int64).ravel()
        values = np.empty(indexes.size, dtype=np.int64)
        try:
            for t, pos in _groups(indexes):
                symbols = self._coder.decode(_table_model(tables, t), pos.size)
                values[pos] = symbols.astype(np.int64) + tables.offsets[t]
            escaped = np.nonzero(values - tables.offsets[indexes] == tables.lengths[indexes])[0]
            if escaped.size:
                self._decode_escapes(values, indexes, escaped, tables)
        except (AssertionError, ValueError, RuntimeError, OverflowError) as e:
            # constriction reports an undecodable sub-stream with any of these.
            raise EntropyDecodingError(f"{self.what} sub-stream cannot be decoded ({e})") from None
        self._steps.append((values, indexes, tables))
        return values.reshape(shape)

    def _decode_escapes(
        self, values: np.ndarray, indexes: np.ndarray, escaped: np.ndarray, tables: CdfTables
    ) -> None:
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
        low = tables.offsets[indexes[escaped]].astype(np.int64)
        high = low + tables.lengths[indexes[escaped]] - 1
        values[escaped] = np.where(beyond < 0, low + beyond, high + beyond)

    def finish(self) -> None:
        """Raise EntropyDecodingError unless the decoded steps are exactly what the sub-stream
        codes (nothing missing, nothing left over, nothing altered)."""
        encoder = SymbolEncoder()
        try:
            for values, indexes, tables in self._steps:
                encoder.encode(values, indexes, tables)
        except ValueError:
            canonical = False
        else:
            canonical = encoder.to_bytes() == self.data
        if not canonical:
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
