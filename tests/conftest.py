"""Shared fixtures: small natural images that ship with scikit-image (nothing downloaded)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return np.ascontiguousarray(skdata.astronaut())


@pytest.fixture(scope="session")
def kodak_size_photo(astronaut: np.ndarray) -> np.ndarray:
    """A 768x512 natural photo (the Kodak size), resampled from astronaut.png."""
    return np.asarray(Image.fromarray(astronaut).resize((768, 512), Image.Resampling.BICUBIC))


@pytest.fixture(scope="session")
def small_photo() -> np.ndarray:
    """A 96x64 crop of coffee.png: fast to code."""
    return np.ascontiguousarray(skdata.coffee()[100:164, 200:296])
