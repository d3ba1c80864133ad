import numpy as np
import pytest

from nic.entropy import (
    PRECISION,
    CdfTables,
    build_gaussian_tables,
    coder,
    decode_symbols,
    encode_symbols,
    quantize_pmf,
    scale_table,
)


@pytest.mark.parametrize("n", [1, 2, 7, 3000])
def test_quantize_pmf_sums_exactly_and_keeps_every_symbol(n):
    rng = np.random.default_rng(n)
    pmf = rng.random(n) ** 8  # many near-zero entries
    counts = quantize_pmf(pmf)
    assert counts.sum() == 1 << PRECISION
    assert counts.min() >= 1
    big = pmf / pmf.sum() > 0.01
    rel = counts[big] / (1 << PRECISION) / (pmf[big] / pmf.sum())
    assert np.all(np.abs(rel - 1) < 0.05)


def test_quantize_pmf_refuses_oversized_alphabet():
    with pytest.raises(ValueError, match="does not fit"):
        quantize_pmf(np.ones((1 << PRECISION) + 1))


def test_gaussian_tables_are_valid_and_widen_with_scale():
    tables = build_gaussian_tables(scale_table())
    tables.validate()
    assert np.all(np.diff(tables.lengths) >= 0)
    assert np.all(tables.offsets == -(tables.lengths // 2))


def test_validate_rejects_bad_tables():
    good = build_gaussian_tables(scale_table(4))
    broken = good.counts.copy()
    broken[0, 0] += 1
    with pytest.raises(ValueError, match="sum"):
        CdfTables(broken, good.lengths, good.offsets).validate()
    zero = good.counts.copy()
    zero[1, 0] = 0
    with pytest.raises(ValueError, match=">= 1"):
        CdfTables(zero, good.lengths, good.offsets).validate()


def test_symbols_round_trip_and_cost_close_to_ideal():
    tables = build_gaussian_tables(scale_table())
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(tables), size=(2, 8, 40, 30))
    values = np.round(rng.normal(0, scale_table()[idx])).astype(np.int64)
    low = tables.offsets[idx]
    values = np.clip(values, low, low + tables.lengths[idx] - 1)  # no escapes: ideal is exact
    data = encode_symbols(values, idx, tables)
    np.testing.assert_array_equal(decode_symbols(data, idx, tables), values)
    ideal = tables.bits(values, idx)
    assert ideal <= 8 * len(data) <= ideal * 1.001 + 64


@pytest.mark.parametrize("beyond", [1, 2, 127, 128, 5000, (1 << 30) - 1])
def test_values_far_outside_their_tables_round_trip_exactly(beyond):
    tables = build_gaussian_tables(scale_table(3))
    idx = np.array([0, 0, 1, 2, 2, 0])
    low, high = tables.offsets[idx], tables.offsets[idx] + tables.lengths[idx] - 1
    values = np.array([low[0] - beyond, high[1] + beyond, 0, low[3], high[4], 1])
    data = encode_symbols(values, idx, tables)
    np.testing.assert_array_equal(decode_symbols(data, idx, tables), values)


def test_an_escape_costs_a_few_bytes_and_values_inside_cost_nothing_more():
    tables = build_gaussian_tables(scale_table())
    rng = np.random.default_rng(1)
    idx = rng.integers(0, len(tables), 20000)
    values = np.round(rng.normal(0, scale_table()[idx])).astype(np.int64)
    low = tables.offsets[idx]
    inside = np.clip(values, low, low + tables.lengths[idx] - 1)
    plain = len(encode_symbols(inside, idx, tables))
    assert 8 * plain <= tables.bits(inside, idx) * 1.001 + 64
    outliers = inside.copy()
    outliers[:10] = 10**6
    assert len(encode_symbols(outliers, idx, tables)) - plain <= 10 * 8


def test_a_value_beyond_what_an_escape_holds_is_refused_at_the_encoder():
    tables = build_gaussian_tables(scale_table(2))
    with pytest.raises(ValueError, match="beyond its table"):
        encode_symbols(np.array([1 << 40]), np.array([0]), tables)


def test_escapes_are_canonical_a_forged_escape_is_refused():
    """A value inside the support coded as an escape decodes to nothing the encoder writes."""
    tables = build_gaussian_tables(scale_table(2))
    idx = np.array([0, 1])
    low = int(tables.offsets[0])
    data = encode_symbols(np.array([low - 1, 0]), idx, tables)
    assert decode_symbols(data, idx, tables).tolist() == [low - 1, 0]
    for i in range(len(data)):
        forged = bytearray(data)
        forged[i] ^= 0x01
        try:
            out = decode_symbols(bytes(forged), idx, tables)
        except ValueError:
            continue
        assert encode_symbols(out, idx, tables) == bytes(forged)


def test_decoder_refuses_misaligned_substream():
    tables = build_gaussian_tables(scale_table(2))
    with pytest.raises(ValueError, match="multiple of 4"):
        decode_symbols(b"abc", np.zeros(3, dtype=np.int64), tables)


def test_many_escapes_of_every_length_round_trip_in_their_order():
    tables = build_gaussian_tables(scale_table())
    rng = np.random.default_rng(2)
    idx = rng.integers(0, len(tables), 5000)
    magnitude = 2 ** rng.integers(0, 30, 5000)
    values = (rng.integers(-1, 2, 5000) * magnitude).astype(np.int64)
    data = encode_symbols(values, idx, tables)
    np.testing.assert_array_equal(decode_symbols(data, idx, tables), values)


def _reference_groups(indexes: np.ndarray) -> list[tuple[int, list[int]]]:
    """(table, positions) by a comparison stable sort of int64 indexes: the grouping's contract."""
    order = np.argsort(indexes.astype(np.int64), kind="mergesort")
    tables = indexes[order]
    return [(int(t), order[tables == t].tolist()) for t in np.unique(tables)]


@pytest.mark.parametrize(
    ("size", "tables", "dtype"),
    [
        (0, 64, np.int64),  # no symbols
        (1, 64, np.int64),
        (5000, 1, np.int64),  # one table
        (5000, 64, np.int16),
        (5000, 256, np.uint8),  # the narrowest key holds every index
        (5000, 257, np.int32),  # one more table: a wider key
        (5000, 70000, np.int64),  # too many tables for a radix sort: still stable
    ],
)
def test_symbols_are_grouped_like_a_stable_sort_of_their_table_indexes(size, tables, dtype):
    rng = np.random.default_rng(size + tables)
    indexes = rng.integers(0, tables, size).astype(dtype)
    if size > 1:
        indexes[: size // 2] = tables - 1  # a long run and a skewed count
    family = CdfTables.from_pmfs([np.array([1 << PRECISION])] * tables, [0] * tables)
    groups = [(t, pos.tolist()) for t, pos in coder._groups(indexes, family)]
    assert groups == _reference_groups(indexes)


@pytest.mark.parametrize("index", [-1, 3])
def test_an_index_that_names_no_table_is_refused(index):
    tables = build_gaussian_tables(scale_table(3))
    with pytest.raises(ValueError, match="outside 0 .. 2"):
        encode_symbols(np.zeros(2, dtype=np.int64), np.array([0, index]), tables)


@pytest.mark.parametrize("tables_count", [1, 64])
def test_every_value_escaped_round_trips_in_any_integer_dtype(tables_count):
    tables = build_gaussian_tables(scale_table(tables_count))
    rng = np.random.default_rng(3)
    idx = rng.integers(0, tables_count, 3000)
    low, high = tables.offsets[idx], tables.offsets[idx] + tables.lengths[idx] - 1
    values = np.where(rng.random(3000) < 0.5, low - 1, high + 1 + rng.integers(0, 1000, 3000))
    data = encode_symbols(values, idx, tables)
    for dtype in (np.int32, np.int16):
        assert encode_symbols(values.astype(np.int32), idx.astype(dtype), tables) == data
    np.testing.assert_array_equal(decode_symbols(data, idx.astype(np.int16), tables), values)
