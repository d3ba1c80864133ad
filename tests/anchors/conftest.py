"""Fixtures for the anchor tests: small crops of scikit-image photos (fast to encode)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data as skdata


@pytest.fixture(scope="session")
def crop() -> np.ndarray:
    """64x48 crop of coffee.png (even sides)."""
    return np.ascontiguousarray(skdata.coffee()[120:168, 300:364])


@pytest.fixture(scope="session")
def odd_crop() -> np.ndarray:
    """67x51 crop of chelsea.png (odd sides)."""
    return np.ascontiguousarray(skdata.chelsea()[80:131, 150:217])
