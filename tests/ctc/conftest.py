"""Fixtures for the harness tests: small real images and a small condition."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata


@pytest.fixture(scope="session")
def crops() -> dict[str, np.ndarray]:
    """Small crops of scikit-image photos (one with odd sides) - fast to code and measure."""
    return {
        "astro": np.ascontiguousarray(skdata.astronaut()[100:148, 200:264]),
        "coffee": np.ascontiguousarray(skdata.coffee()[120:168, 300:364]),
        "cat": np.ascontiguousarray(skdata.chelsea()[80:131, 150:217]),
    }


@pytest.fixture(scope="session")
def crop_folder(tmp_path_factory, crops) -> Path:
    folder = tmp_path_factory.mktemp("crops")
    for name, image in crops.items():
        Image.fromarray(image).save(folder / f"{name}.png")
    return folder


@pytest.fixture()
def test_codecs(tmp_path_factory, monkeypatch) -> dict[str, str]:
    """The test codecs registered through a real entry-point distribution; returns the
    environment (PYTHONPATH) a subprocess needs to see them too."""
    from ctc_testing import install_entry_points

    folder = install_entry_points(tmp_path_factory.mktemp("entry_points"))
    here = str(Path(__file__).parent)
    monkeypatch.syspath_prepend(str(folder))
    pythonpath = os.pathsep.join([str(folder), here, os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": pythonpath}


@pytest.fixture(autouse=True)
def cache_folder(tmp_path, monkeypatch) -> Path:
    """Complexity measurements are cached in the test's folder, never the user's."""
    from ctc.complexity_cache import ENV

    folder = tmp_path / "cache"
    monkeypatch.setenv(ENV, str(folder))
    return folder


@pytest.fixture(scope="session")
def luma_pair() -> tuple[np.ndarray, np.ndarray]:
    """JPEG AI luma of scikit-image's astronaut and of its Pillow JPEG quality-30 decode."""
    from ctc_testing import ASTRONAUT_Q30

    from ctc.metrics.jpegai_luma import jpeg_ai_luma

    decoded = np.asarray(Image.open(ASTRONAUT_Q30).convert("RGB"))
    return jpeg_ai_luma(skdata.astronaut()), jpeg_ai_luma(decoded)
