"""Helpers for the harness tests: a condition-file writer and small real codecs (a continuous
knob whose rate falls as it grows, and a codec that does its own rate matching)."""

from __future__ import annotations

import contextlib
import re
import struct
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import yaml

from anchors.jpeg import JpegCodec
from ctc.codec import Knob

PATH_LIKE = re.compile(r"(?:^|[\s(\"'])(?:~|\.{1,2})?/\w")
"""Text that looks like a file path (a machine path must not leak into a report)."""


class QuantZlibCodec:
    """Uniform quantization with a real-valued step, then zlib: step up, rate down."""

    name = "quantzlib"
    knob = Knob(name="step", kind="continuous", low=1.0, high=48.0, rate_increases=False)

    def version(self) -> str:
        return f"quantzlib 1 (zlib {zlib.ZLIB_VERSION})"

    def encode(self, image: np.ndarray, knob_value: float) -> bytes:
        q = np.floor(image.astype(np.float64) / knob_value + 0.5).astype(np.uint8)
        header = struct.pack("<HHd", image.shape[0], image.shape[1], knob_value)
        return header + zlib.compress(q.tobytes(), 9)

    def decode(self, data: bytes) -> np.ndarray:
        h, w, step = struct.unpack("<HHd", data[:12])
        q = np.frombuffer(zlib.decompress(data[12:]), np.uint8).reshape(h, w, 3)
        return np.clip(np.floor(q * step + 0.5), 0, 255).astype(np.uint8)


class SlowZlibCodec(QuantZlibCodec):
    """QuantZlibCodec whose encoder takes 1.5 s (a job about 5 s): jobs that are still running
    when a test kills or interrupts the run (the workers sleep, so the cores stay free)."""

    name = "slowzlib"

    def encode(self, image: np.ndarray, knob_value: float) -> bytes:
        time.sleep(1.5)
        return super().encode(image, knob_value)


class SelfMatchingJpeg(JpegCodec):
    """JPEG that picks its quality itself by scanning downwards (or declines, returning None)."""

    name = "selfjpeg"

    def __init__(self, decline: bool = False) -> None:
        self.decline = decline
        self.calls = 0

    def encode_to_target(self, image, target_bpp, min_bpp, max_bpp):
        self.calls += 1
        if self.decline:
            return None
        pixels = image.shape[0] * image.shape[1]
        for quality in range(95, 0, -1):
            data = self.encode(image, quality)
            if 8 * len(data) / pixels <= max_bpp:
                return float(quality), data
        return 1.0, self.encode(image, 1)


class CroppingCodec(JpegCodec):
    """A broken codec: its decoder loses the last row."""

    name = "cropping"

    def decode(self, data: bytes) -> np.ndarray:
        return super().decode(data)[:-1]


class MissingModelCodec(JpegCodec):
    """A codec that cannot be constructed (as one whose weights are missing)."""

    def __init__(self) -> None:
        raise FileNotFoundError("model weights not found: /nowhere/model.pt")


ENTRY_POINTS = {
    "quantzlib": "ctc_testing:QuantZlibCodec",
    "slowzlib": "ctc_testing:SlowZlibCodec",
    "cropping": "ctc_testing:CroppingCodec",
    "missing_model": "ctc_testing:MissingModelCodec",
    "missing_module": "no_such_module_for_ctc_tests:Codec",
    "not_a_codec": "builtins:object",
}


def install_entry_points(folder: Path) -> Path:
    """A real (metadata-only) distribution in `folder` that registers ENTRY_POINTS in the
    ctc.codecs group; put `folder` on sys.path (or PYTHONPATH) to make them visible."""
    info = folder / "ctc_test_codecs-0.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ctc-test-codecs\nVersion: 0.0\n")
    lines = [f"{name} = {target}" for name, target in ENTRY_POINTS.items()]
    (info / "entry_points.txt").write_text("[ctc.codecs]\n" + "\n".join(lines) + "\n")
    return folder


def write_condition(folder: Path, **overrides) -> Path:
    """A valid condition file (quick-like, small) with some fields replaced."""
    spec = {
        "name": "test",
        "targets_bpp": [0.5, 1.0],
        "tolerance": {"min_percent": -15, "max_percent": 15, "scope": "per_image"},
        "colour": {"matrix": "bt709", "range": "full", "bit_depth": 8},
        "metrics": {"psnr_rgb": {}, "psnr_yuv": {"chroma": "420"}, "msssim_rgb": {}},
        "anchors": ["jpeg"],
        "dataset": "skimage",
        "output": str(folder / "out"),
    }
    spec.update(overrides)
    path = folder / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


ASTRONAUT_Q30 = Path(__file__).parent / "data" / "astronaut-jpeg-q30.png"
"""scikit-image's astronaut as Pillow's JPEG quality 30 decodes it: the metric reference pair."""


def noisy_plane(plane: np.ndarray, sigma: float, peak: float = 1023.0, seed: int = 0) -> np.ndarray:
    """`plane` plus Gaussian noise of `sigma`, rounded and clipped to [0, peak] (seeded)."""
    rng = np.random.default_rng(seed)
    return np.clip(plane + rng.normal(0.0, sigma, plane.shape), 0, peak).round()


@contextlib.contextmanager
def quiet_bd():
    """Silence the dataset BD warnings where a test checks the numbers, not the warnings."""
    from ctc.bdrate import LeftOutWarning, LowOverlapWarning, OutlierWarning

    with warnings.catch_warnings():
        for category in (LowOverlapWarning, LeftOutWarning, OutlierWarning):
            warnings.simplefilter("ignore", category)
        yield


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):  # it ended meanwhile
            continue
    return found


def running(pid: int) -> bool:
    """Whether process `pid` exists and has not ended (a zombie has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
