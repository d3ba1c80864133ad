"""Checks of what the anchors are given: an 8-bit RGB image and a whole QP in range."""

from __future__ import annotations

import numpy as np


def check_image(image: np.ndarray, what: str) -> tuple[int, int]:
    """Height and width of a uint8 (H, W, 3) image, else ValueError."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"{what}: expected uint8 (H, W, 3), got {getattr(image, 'dtype', '?')} "
                         f"{getattr(image, 'shape', '?')}")  # fmt: skip
    if image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise ValueError(f"{what}: expected uint8 (H, W, 3), got {image.shape}")
    return image.shape[0], image.shape[1]


def check_qp(value: float, low: int, high: int, what: str) -> int:
    """A whole QP within the codec's range."""
    qp = int(round(value))
    if not low <= qp <= high:
        raise ValueError(f"{what}: QP {qp} outside {low}..{high}")
    return qp
