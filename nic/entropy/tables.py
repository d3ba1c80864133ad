"""Integer CDF tables: the only form in which coded distributions reach the arithmetic coder.

Tables are computed once when a model is exported and stored in the model file, so encoder and
decoder use the same integers whatever floating-point hardware they run on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PRECISION = 16
"""Probabilities are integer counts out of 2**PRECISION."""

LIKELIHOOD_BOUND = 1e-9
"""Floor on modelled probabilities during training (keeps log2 finite)."""


def quantize_pmf(pmf: np.ndarray, precision: int = PRECISION) -> np.ndarray:
    """Integer counts summing to 2**precision, every symbol at least 1, close to `pmf`."""
    pmf = np.clip(np.asarray(pmf, dtype=np.float64), 0.0, None)
    n = pmf.size
    total = 1 << precision
    if n > total:
        raise ValueError(f"alphabet of {n} symbols does not fit {precision}-bit precision")
    pmf = pmf / pmf.sum()
    counts = np.floor(pmf * (total - n)).astype(np.int64) + 1
    remainder = total - int(counts.sum())
    # Give what flooring lost to the symbols that lost the most (stable order: deterministic).
    loss = pmf * (total - n) + 1 - counts
    order = np.argsort(-loss, kind="stable")
    counts[order[:remainder]] += 1
    return counts.astype(np.int32)


@dataclass(frozen=True)
class CdfTables:
    """A family of categorical models: table t codes values offsets[t] .. offsets[t]+lengths[t]-1.

    counts[t, :lengths[t]] are the integer probabilities (out of 2**PRECISION); the rest is zero.
    """

    counts: np.ndarray  # int32 (T, L)
    lengths: np.ndarray  # int32 (T,)
    offsets: np.ndarray  # int32 (T,)

    @classmethod
    def from_pmfs(cls, pmfs: list[np.ndarray], offsets: list[int]) -> CdfTables:
        width = max(p.size for p in pmfs)
        counts = np.zeros((len(pmfs), width), dtype=np.int32)
        for t, p in enumerate(pmfs):
            counts[t, : p.size] = p
        lengths = np.array([p.size for p in pmfs], dtype=np.int32)
        return cls(counts, lengths, np.asarray(offsets, dtype=np.int32))

    def __len__(self) -> int:
        return int(self.lengths.size)

    @property
    def min_symbol_bits(self) -> np.ndarray:
        """float64 (T,): bits of each table's most probable symbol, the least a value costs."""
        return -np.log2(self.counts.max(axis=1).astype(np.float64) / (1 << PRECISION))

    def bits(self, values: np.ndarray, indexes: np.ndarray) -> float:
        """Ideal code length in bits of values inside their tables' supports."""
        symbols = values - self.offsets[indexes]
        p = self.counts[indexes, symbols].astype(np.float64)
        return float(-np.log2(p / (1 << PRECISION)).sum())

    def to_state(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}.counts": self.counts,
            f"{prefix}.lengths": self.lengths,
            f"{prefix}.offsets": self.offsets,
        }

    @classmethod
    def from_state(cls, state: dict, prefix: str) -> CdfTables:
        tables = cls(
            np.asarray(state[f"{prefix}.counts"], dtype=np.int32),
            np.asarray(state[f"{prefix}.lengths"], dtype=np.int32),
            np.asarray(state[f"{prefix}.offsets"], dtype=np.int32),
        )
        tables.validate()
        return tables

    def validate(self) -> None:
        """Refuse tables that would make the coder misbehave (a corrupt model file)."""
        total = 1 << PRECISION
        t, width = self.counts.shape
        if self.lengths.shape != (t,) or self.offsets.shape != (t,):
            raise ValueError("CDF tables: inconsistent shapes")
        if np.any(self.lengths < 1) or np.any(self.lengths > width):
            raise ValueError("CDF tables: bad lengths")
        mask = np.arange(width)[None, :] < self.lengths[:, None]
        if np.any(self.counts[mask] < 1) or np.any(self.counts[~mask] != 0):
            raise ValueError("CDF tables: counts must be >= 1 inside and 0 outside the support")
        if np.any(self.counts.sum(axis=1, dtype=np.int64) != total):
            raise ValueError(f"CDF tables: every table must sum to 2**{PRECISION}")
