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
    values = tables.clamp(values, idx)
    data = encode_symbols(values, idx, tables)
    np.testing.assert_array_equal(decode_symbols(data, idx, tables), values)
    ideal = tables.bits(values, idx)
    assert ideal <= 8 * len(data) <= ideal * 1.001 + 64


def test_clamp_maps_outliers_to_table_ends():
    tables = build_gaussian_tables(scale_table(2))
    idx = np.array([0, 0, 1])
    clamped = tables.clamp(np.array([-1000, 1000, 0]), idx)
    lo = tables.offsets[0]
    assert list(clamped) == [lo, lo + tables.lengths[0] - 1, 0]


def test_decoder_refuses_misaligned_substream():
    tables = build_gaussian_tables(scale_table(2))
    with pytest.raises(ValueError, match="multiple of 4"):
        decode_symbols(b"abc", np.zeros(3, dtype=np.int64), tables)
