"""anchors.compare on frozen CSVs whose curves differ by known rate factors."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from anchors.compare import report
from anchors.freeze import write_rows

QPS = {"bpg": (12, 17, 22, 27, 32, 37, 42, 47), "vvc": (12, 17, 22, 27, 32, 37, 42, 47),
       "vtm": (22, 27, 32, 37, 42, 47)}  # fmt: skip
RATE_FACTOR = {"bpg": 1.0, "vvc": 0.9, "vtm": 0.75}  # bits for the same PSNR, relative to bpg
TARGETS = (0.06, 0.12, 0.25, 0.5, 1.0, 1.5)


def _rows(codec: str, images: tuple[str, ...]) -> list[dict]:
    """Fixed-QP and fvc target rows on curves PSNR = 30 + 6 log2(bpp / factor) + c(image)."""
    factor = RATE_FACTOR[codec]
    rows = []
    for n, image in enumerate(images):
        for qp in QPS[codec]:
            bpp = 2.0 ** ((37 - qp) / 6) * (1 + n / 10) * factor
            psnr = 30 + (37 - qp) + 0.6 * n
            rows.append({"condition": "fixed_qp", "image": image, "knob_value": float(qp),
                         "bpp": bpp, "psnr_rgb": psnr})  # fmt: skip
        for target in TARGETS:
            bpp = target * factor
            psnr = 30 + 6 * math.log2(target)
            rows.append({"condition": "fvc", "image": image, "target_bpp": target, "bpp": bpp,
                         "psnr_rgb": psnr})  # fmt: skip
    return rows


@pytest.fixture
def frozen(tmp_path: Path) -> Path:
    write_rows(tmp_path / "bpg.csv", _rows("bpg", ("a", "b", "c")))
    write_rows(tmp_path / "vvc.csv", _rows("vvc", ("a", "b", "c")))
    write_rows(tmp_path / "vtm.csv", _rows("vtm", ("a", "b")))  # a freeze not yet complete
    return tmp_path


def test_each_pair_is_compared_over_the_images_and_qps_both_hold(frozen):
    text = report(frozen)
    assert "ours vtm (2 images), QP 47..22:" in text
    assert "ours vvc vs ours bpg, 3 images, QP 12..47: mean curves -10.00 %" in text
    assert "ours vtm vs ours bpg, 2 images, QP 22..47: mean curves -25.00 %" in text
    assert "ours vtm vs ours bpg, 2 images, QP 32..47: mean curves -25.00 %" in text
    assert "ours vvc vs ours vtm, 2 images, QP 22..47: mean curves +20.00 %" in text
    assert "ours vtm vs ours bpg, QP 22..47: mean of per-image BD-rates -25.00 %" in text
    for r in ("low", "high", "all"):
        assert (f"ours vvc vs ours vtm on fvc target rows, range {r}: average curve +20.00 %, "
                "mean of per-image +20.00 %") in text  # fmt: skip
    assert "published vtm vs published bpg: -18.09 %" in text


def test_a_curve_that_covers_part_of_the_published_one_says_so(frozen):
    line = next(x for x in report(frozen).splitlines() if "ours vtm vs published bpg" in x)
    assert "(curves overlap by" in line


def test_the_module_runs_on_a_folder(frozen):
    proc = subprocess.run([sys.executable, "-m", "anchors.compare", str(frozen)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0 and "ours vtm vs ours bpg" in proc.stdout, proc.stderr
    assert "Warning" not in proc.stderr
