"""Entropy models and their binding to the arithmetic coder."""

from nic.entropy.coder import (
    EntropyDecodingError,
    SymbolDecoder,
    SymbolEncoder,
    check_size,
    decode_symbols,
    encode_symbols,
)
from nic.entropy.factorized import FactorizedPrior
from nic.entropy.gaussian import (
    build_gaussian_tables,
    gaussian_likelihood,
    scale_indexes,
    scale_table,
)
from nic.entropy.tables import PRECISION, CdfTables, quantize_pmf

__all__ = [
    "PRECISION",
    "CdfTables",
    "EntropyDecodingError",
    "SymbolDecoder",
    "SymbolEncoder",
    "FactorizedPrior",
    "build_gaussian_tables",
    "check_size",
    "decode_symbols",
    "encode_symbols",
    "gaussian_likelihood",
    "quantize_pmf",
    "scale_indexes",
    "scale_table",
]
