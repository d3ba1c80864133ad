import numpy as np
import pytest

from nic.entropy import (
    PRECISION,
    CdfTables,
    build_gaussian_tables,
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
