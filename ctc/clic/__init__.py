"""The CLIC challenge's protocol: its dataset-level rules (rules.py) and rate allocation
across the images of a test set (allocate.py); a track judged on a run's rows (evaluate.py)."""

from ctc.clic.allocate import (
    Allocation,
    ImagePoints,
    InfeasibleError,
    RdPoint,
    TooLargeError,
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
    "TooLargeError",
    "aggregate_msssim",
    "aggregate_psnr",
    "allocate_budget",
    "allocate_thresholds",
    "budget_bytes",
    "exact_allocation",
]
