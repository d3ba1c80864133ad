"""VMAF through the libvmaf filter of the FFmpeg that the imageio-ffmpeg wheel ships.

Both images are converted to Y'CbCr with ctc.metrics.colour (the condition's matrix, full range,
bit depth and chroma format; FVC specifies 4:2:0), written as raw planar frames, and scored by
`libvmaf` with its built-in default model (vmaf_v0.6.1). The decoded image is the filter's
"main" input and the original its "reference" input. The score is the one frame's "vmaf" value
from libvmaf's JSON log.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from ctc.metrics.colour import Chroma, Matrix, rgb_to_yuv

MODEL = "vmaf_v0.6.1"
MIN_SIDE = 33


class VmafError(RuntimeError):
    """FFmpeg or its libvmaf filter failed."""


def pixel_format(bit_depth: int, chroma: Chroma) -> str:
    """FFmpeg's name for planar Y'CbCr at this bit depth (8 or 10) and chroma format."""
    if bit_depth not in (8, 10):
        raise ValueError(f"VMAF input must be 8 or 10 bits, not {bit_depth}")
    return f"yuv{chroma}p" + ("10le" if bit_depth == 10 else "")


def write_yuv(path: Path, rgb: np.ndarray, matrix: Matrix, bit_depth: int, chroma: Chroma) -> None:
    """One raw planar frame (Y, then Cb, then Cr; 16-bit little-endian above 8 bits)."""
    dtype = np.uint8 if bit_depth == 8 else np.dtype("<u2")
    planes = rgb_to_yuv(rgb, matrix, bit_depth, chroma)
    path.write_bytes(b"".join(p.astype(dtype).tobytes() for p in planes))


def ffmpeg_libvmaf_command(
    main: Path, reference: Path, width: int, height: int, pix_fmt: str, log: Path
) -> list[str]:
    """The FFmpeg command line that scores one raw frame against another."""
    raw = ["-f", "rawvideo", "-pix_fmt", pix_fmt, "-video_size", f"{width}x{height}"]
    graph = f"[0:v][1:v]libvmaf=model=version={MODEL}:log_fmt=json:log_path={log}:n_threads=1"
    return [
        imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-nostdin",
        *raw, "-i", str(main), *raw, "-i", str(reference),
        "-lavfi", graph, "-f", "null", "-",
    ]  # fmt: skip


def run_libvmaf(command: list[str], log: Path) -> dict:
    """Run an FFmpeg libvmaf command and return its parsed JSON log."""
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not log.exists():
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise VmafError(f"ffmpeg libvmaf failed (exit {proc.returncode}): {tail[0]}")
    return json.loads(log.read_text())


def vmaf(
    original: np.ndarray,
    decoded: np.ndarray,
    matrix: Matrix = "bt709",
    bit_depth: int = 8,
    chroma: Chroma = "420",
) -> float:
    """VMAF score (0..100) of the decoded RGB image against the original."""
    if original.shape != decoded.shape:
        raise ValueError(f"shape mismatch: {original.shape} vs {decoded.shape}")
    height, width = original.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ValueError(f"VMAF needs both sides >= {MIN_SIDE}, got {width}x{height}")
    fmt = pixel_format(bit_depth, chroma)
    with tempfile.TemporaryDirectory(prefix="ctc-vmaf-") as tmp:
        ref, dis, log = Path(tmp, "ref.yuv"), Path(tmp, "dis.yuv"), Path(tmp, "vmaf.json")
        write_yuv(ref, original, matrix, bit_depth, chroma)
        write_yuv(dis, decoded, matrix, bit_depth, chroma)
        result = run_libvmaf(ffmpeg_libvmaf_command(dis, ref, width, height, fmt, log), log)
    return float(result["frames"][0]["metrics"]["vmaf"])


@cache
def version() -> str:
    """FFmpeg build and libvmaf version, for the run record."""
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    first = subprocess.run([exe, "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    probe = np.zeros((MIN_SIDE, MIN_SIDE, 3), np.uint8)
    with tempfile.TemporaryDirectory(prefix="ctc-vmaf-") as tmp:
        a, log = Path(tmp, "a.yuv"), Path(tmp, "vmaf.json")
        write_yuv(a, probe, "bt709", 8, "444")
        result = run_libvmaf(ffmpeg_libvmaf_command(a, a, MIN_SIDE, MIN_SIDE, "yuv444p", log), log)
    build = first.split(" Copyright")[0]
    return f"{build}; libvmaf {result.get('version', '?')}; {MODEL}"
