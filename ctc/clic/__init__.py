"""The CLIC challenge's protocol: its dataset-level rules (rules.py) and rate allocation
across the images of a test set (allocate.py)."""

from ctc.clic.allocate import (
    Allocation,
    ImagePoints,
    InfeasibleError,
    RdPoint,
    allocate_budget,
    allocate_thresholds,
    exact_allocation,
)
from ctc.clic.rules import aggregate_msssim, aggregate_psnr, budget_bytes

__all__ = [
    "Allocation",
    "ImagePoints",
    "InfeasibleError",
    "RdPoint",
    "aggregate_msssim",
    "aggregate_psnr",
    "allocate_budget",
    "allocate_thresholds",
    "budget_bytes",
    "exact_allocation",
]
