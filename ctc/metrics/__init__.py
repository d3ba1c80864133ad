"""Quality metrics, always of a decoded image against the original 8-bit RGB image.

A condition selects metrics by name (METRICS), each with its options (OPTIONS: the allowed
values, the first being the default); each metric fills the result columns listed in COLUMNS.
Every YUV metric uses the condition's colour matrix (full range) and internal bit depth.

The JPEG AI luma metrics (JPEG_AI_LUMA: psnr_hvs, vif_p, iw_ssim, nlpd) are the exception: they
are computed, as the JPEG AI framework computes them, on its 10-bit BT.709 luma
(ctc.metrics.jpegai_luma, peak 1023) whatever the condition's matrix and bit depth, so that
their values compare with JPEG AI's. FSIM takes the 8-bit RGB images themselves.

vif_p, iw_ssim, fsim and nlpd live in modules of their own, imported only when a condition
selects them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ctc.metrics import msssim, psnr, psnr_hvs, vmaf
from ctc.metrics.colour import Chroma, Matrix, rgb_to_yuv
from ctc.metrics.jpegai_luma import PEAK as JPEG_AI_PEAK
from ctc.metrics.jpegai_luma import jpeg_ai_luma

COLUMNS: dict[str, tuple[str, ...]] = {
    "psnr_rgb": ("psnr_rgb", "sse_rgb", "n_values"),
    "psnr_yuv": ("psnr_y", "psnr_u", "psnr_v", "psnr_yuv"),
    "msssim_rgb": ("msssim_rgb", "msssim_rgb_db"),
    "msssim_y": ("msssim_y", "msssim_y_db"),
    "vmaf": ("vmaf",),
    "psnr_hvs": ("psnr_hvs", "psnr_hvsm"),
    "msssim_yuv": ("msssim_yuv", "msssim_yuv_db"),
    "vif_p": ("vif_p",),
    "iw_ssim": ("iw_ssim",),
    "fsim": ("fsim", "fsimc"),
    "nlpd": ("nlpd",),
}
METRICS: tuple[str, ...] = tuple(COLUMNS)
OPTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "psnr_rgb": {},
    "psnr_yuv": {"chroma": ("444", "420")},
    "msssim_rgb": {"downsample": msssim.DOWNSAMPLING},
    "msssim_y": {"downsample": msssim.DOWNSAMPLING},
    "vmaf": {"chroma": ("420", "444")},
    "psnr_hvs": {},
    "msssim_yuv": {"chroma": ("420", "444"), "downsample": msssim.DOWNSAMPLING},
    "vif_p": {},
    "iw_ssim": {},
    "fsim": {"variant": ("jpeg_ai", "matlab")},
    "nlpd": {"variant": ("jpeg_ai", "matlab")},
}
JPEG_AI_LUMA: tuple[str, ...] = ("psnr_hvs", "vif_p", "iw_ssim", "nlpd")


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


def msssim_yuv(
    original: np.ndarray,
    decoded: np.ndarray,
    matrix: Matrix,
    bit_depth: int,
    chroma: Chroma = "420",
    downsample: str = "symmetric",
) -> float:
    """(6 MS-SSIM(Y) + MS-SSIM(Cb) + MS-SSIM(Cr)) / 8, the FVC (IEEE 1857.11) weighting, on the
    Y'CbCr planes of ctc.metrics.colour (4:2:0 chroma: the 2x2 means psnr_yuv's "420" uses).

    Chroma planes shorter than msssim.MIN_SIDE are mirror-padded like any small plane.
    """
    peak = float((1 << bit_depth) - 1)
    ref = rgb_to_yuv(original, matrix, bit_depth, chroma)
    dec = rgb_to_yuv(decoded, matrix, bit_depth, chroma)
    y, u, v = (msssim.ms_ssim_plane(r, d, peak, downsample) for r, d in zip(ref, dec, strict=True))
    return (6.0 * y + u + v) / 8.0


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
    luma: tuple[np.ndarray, np.ndarray] | None = None
    if any(name in JPEG_AI_LUMA for name in config.metrics):
        luma = jpeg_ai_luma(original), jpeg_ai_luma(decoded)
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
        elif name == "psnr_hvs":
            assert luma is not None
            out["psnr_hvs"], out["psnr_hvsm"] = psnr_hvs.psnr_hvs(*luma, peak=JPEG_AI_PEAK)
        elif name == "msssim_yuv":
            chroma, down = config.option(name, "chroma"), config.option(name, "downsample")
            value = msssim_yuv(original, decoded, matrix, depth, chroma, down)
            out["msssim_yuv"], out["msssim_yuv_db"] = value, msssim.to_db(value)
        elif name == "vif_p":
            from ctc.metrics.vif import vif_p

            assert luma is not None
            out["vif_p"] = float(vif_p(*luma, peak=JPEG_AI_PEAK))
        elif name == "iw_ssim":
            from ctc.metrics.iwssim import iw_ssim

            assert luma is not None
            out["iw_ssim"] = float(iw_ssim(*luma, peak=JPEG_AI_PEAK))
        elif name == "fsim":
            from ctc.metrics.fsim import fsim

            variant = config.option(name, "variant")
            fsim_value, fsimc_value = fsim(original, decoded, variant=variant)
            out["fsim"], out["fsimc"] = float(fsim_value), float(fsimc_value)
        elif name == "nlpd":
            from ctc.metrics.nlpd import nlpd

            assert luma is not None
            variant = config.option(name, "variant")
            out["nlpd"] = float(nlpd(*luma, peak=JPEG_AI_PEAK, variant=variant))
        else:
            raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    return out


def tool_versions() -> dict[str, str]:
    """Versions of the external tools behind the metrics, for the run record."""
    return {"vmaf": vmaf.version()}
