"""Quality metrics, always of a decoded image against the original 8-bit RGB image.

A condition selects metrics by name (METRICS), each with its options (OPTIONS: the allowed
values, the first being the default); each metric fills the result columns listed in COLUMNS.
Every YUV metric uses the condition's colour matrix (full range) and internal bit depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ctc.metrics import msssim, psnr, vmaf
from ctc.metrics.colour import Matrix, rgb_to_yuv

COLUMNS: dict[str, tuple[str, ...]] = {
    "psnr_rgb": ("psnr_rgb", "sse_rgb", "n_values"),
    "psnr_yuv": ("psnr_y", "psnr_u", "psnr_v", "psnr_yuv"),
    "msssim_rgb": ("msssim_rgb", "msssim_rgb_db"),
    "msssim_y": ("msssim_y", "msssim_y_db"),
    "vmaf": ("vmaf",),
}
METRICS: tuple[str, ...] = tuple(COLUMNS)
OPTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "psnr_rgb": {},
    "psnr_yuv": {"chroma": ("444", "420")},
    "msssim_rgb": {"downsample": msssim.DOWNSAMPLING},
    "msssim_y": {"downsample": msssim.DOWNSAMPLING},
    "vmaf": {"chroma": ("420", "444")},
}


def default_options(name: str) -> dict[str, str]:
    """A metric's options at their defaults."""
    return {key: values[0] for key, values in OPTIONS[name].items()}


@dataclass(frozen=True)
class MetricConfig:
    """Which metrics to compute, with their options, and the YUV conventions they use."""

    matrix: Matrix = "bt709"
    bit_depth: int = 8
    metrics: dict[str, dict[str, str]] = field(
        default_factory=lambda: {m: default_options(m) for m in METRICS}
    )

    def option(self, name: str, key: str) -> str:
        return self.metrics[name].get(key, OPTIONS[name][key][0])


def compute(
    original: np.ndarray, decoded: np.ndarray, config: MetricConfig
) -> dict[str, float | int | None]:
    """Every column of the selected metrics; None where a metric is undefined (tiny VMAF)."""
    if original.shape != decoded.shape or decoded.dtype != np.uint8:
        raise ValueError(
            f"decoded image is {decoded.dtype} {decoded.shape}, original is uint8 {original.shape}"
        )
    out: dict[str, float | int | None] = {}
    depth, matrix = config.bit_depth, config.matrix
    for name in config.metrics:
        if name == "psnr_rgb":
            out["psnr_rgb"] = psnr.psnr_rgb(original, decoded)
            out["sse_rgb"] = psnr.sse(original, decoded)
            out["n_values"] = original.size
        elif name == "psnr_yuv":
            chroma = config.option(name, "chroma")
            out.update(psnr.psnr_yuv(original, decoded, matrix, depth, chroma))
        elif name == "msssim_rgb":
            value = msssim.ms_ssim(original, decoded, 255.0, config.option(name, "downsample"))
            out["msssim_rgb"], out["msssim_rgb_db"] = value, msssim.to_db(value)
        elif name == "msssim_y":
            y_ref = rgb_to_yuv(original, matrix, depth)[0]
            y_dec = rgb_to_yuv(decoded, matrix, depth)[0]
            peak = float((1 << depth) - 1)
            value = msssim.ms_ssim(y_ref, y_dec, peak, config.option(name, "downsample"))
            out["msssim_y"], out["msssim_y_db"] = value, msssim.to_db(value)
        elif name == "vmaf":
            small = min(original.shape[:2]) < vmaf.MIN_SIDE
            chroma = config.option(name, "chroma")
            out["vmaf"] = None if small else vmaf.vmaf(original, decoded, matrix, depth, chroma)
        else:
            raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    return out


def tool_versions() -> dict[str, str]:
    """Versions of the external tools behind the metrics, for the run record."""
    return {"vmaf": vmaf.version()}
