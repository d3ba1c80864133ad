"""Running the imageio-ffmpeg wheel's FFmpeg binary, and external tools, for the anchors.

Every anchor that has no Python binding goes through a subprocess: raw planar frames are written
to a temporary folder, the tool encodes them to a file, and decoding asks FFmpeg for raw planar
frames on stdout. Failures become one-line AnchorError messages that name the tool and the last
line it printed, so that a CTC job fails clearly while the rest of the run goes on.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import imageio_ffmpeg
import numpy as np

TIMEOUT_S = 900  # the slowest embedded encode (VVenC slower on a Kodak image) is ~1 minute


class AnchorError(RuntimeError):
    """An anchor's tool is missing or failed; the message is one line."""


def ffmpeg_exe() -> str:
    """Path of the FFmpeg binary from the imageio-ffmpeg wheel."""
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as e:  # imageio-ffmpeg raises RuntimeError when it has no binary
        raise AnchorError(f"no FFmpeg binary from imageio-ffmpeg: {e}") from None


def find_tool(name: str, configured: str | None = None) -> str | None:
    """A configured path (must exist) or the tool found on PATH, else None."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise AnchorError(f"{name}: configured path {configured} does not exist")
        return str(path)
    return shutil.which(name)


def run_tool(args: Sequence[str], what: str, timeout: float = TIMEOUT_S) -> str:
    """Run a command; return its output text, or raise AnchorError with one line on failure."""
    try:
        proc = subprocess.run(
            [str(a) for a in args],
            capture_output=True,
            text=True,
            timeout=timeout,
            errors="replace",
        )
    except FileNotFoundError:
        raise AnchorError(f"{what}: binary not found: {args[0]}") from None
    except subprocess.TimeoutExpired:
        raise AnchorError(f"{what}: no result within {timeout:g} s") from None
    output = (proc.stderr or "") + (proc.stdout or "")
    if proc.returncode != 0:
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        errors = [line for line in lines if line.lower().startswith("error")]
        last = (errors or lines or [""])[-1]  # VTM prints its banner after the error line
        raise AnchorError(f"{what} failed (exit {proc.returncode}): {last}")
    return output


def run_bytes(args: Sequence[str], what: str, timeout: float = TIMEOUT_S) -> bytes:
    """Run a command and return its stdout as bytes (raw frames from FFmpeg)."""
    try:
        proc = subprocess.run([str(a) for a in args], capture_output=True, timeout=timeout)
    except FileNotFoundError:
        raise AnchorError(f"{what}: binary not found: {args[0]}") from None
    except subprocess.TimeoutExpired:
        raise AnchorError(f"{what}: no result within {timeout:g} s") from None
    if proc.returncode != 0:
        text = proc.stderr.decode(errors="replace").strip().splitlines()
        raise AnchorError(f"{what} failed (exit {proc.returncode}): {text[-1] if text else ''}")
    return proc.stdout


@cache
def ffmpeg_version() -> str:
    """E.g. "FFmpeg 9.0.2 (n9.0.2-17-g2a571b6068-20260930)": release and exact build tag."""
    first = run_tool([ffmpeg_exe(), "-version"], "ffmpeg -version").splitlines()[0]
    tag = first.split()[2] if len(first.split()) > 2 else "?"
    release = re.match(r"n?(\d+(?:\.\d+)+)", tag)
    return f"FFmpeg {release.group(1) if release else tag} ({tag})"


def raw_input_args(pix_fmt: str, width: int, height: int, path: Path) -> list[str]:
    """FFmpeg arguments that read one raw planar frame from a file."""
    return [
        "-f", "rawvideo", "-pix_fmt", pix_fmt, "-video_size", f"{width}x{height}",
        "-i", str(path),
    ]  # fmt: skip


def write_planes(path: Path, planes: Sequence[np.ndarray], bit_depth: int) -> None:
    """Planes one after the other: 8-bit samples as bytes, deeper ones as 16-bit little-endian."""
    dtype = np.uint8 if bit_depth == 8 else np.dtype("<u2")
    path.write_bytes(b"".join(np.ascontiguousarray(p, dtype=dtype).tobytes() for p in planes))


def read_planes(
    data: bytes, shapes: Sequence[tuple[int, int]], bit_depth: int, what: str
) -> list[np.ndarray]:
    """Split raw planar bytes into planes of the given shapes (checks the size exactly)."""
    dtype = np.dtype(np.uint8) if bit_depth == 8 else np.dtype("<u2")
    sizes = [h * w * dtype.itemsize for h, w in shapes]
    if len(data) != sum(sizes):
        raise AnchorError(f"{what}: decoder returned {len(data)} bytes, expected {sum(sizes)}")
    planes, offset = [], 0
    for (h, w), size in zip(shapes, sizes, strict=True):
        planes.append(np.frombuffer(data, dtype, count=h * w, offset=offset).reshape(h, w))
        offset += size
    return planes


def ffmpeg_decode_raw(path: Path, pix_fmt: str, what: str) -> tuple[int, int, bytes]:
    """Decode the first frame of a file with FFmpeg's own decoders: width, height and raw
    planar bytes (read from a YUV4MPEG2 stream, whose header carries the size)."""
    args = [ffmpeg_exe(), "-v", "error", "-nostdin", "-threads", "1", "-i", str(path)]
    args += ["-frames:v", "1", "-f", "yuv4mpegpipe", "-strict", "-1", "-pix_fmt", pix_fmt, "-"]
    out = run_bytes(args, what)
    header, _, rest = out.partition(b"\n")
    frame_header, _, raw = rest.partition(b"\n")
    width = re.search(rb" W(\d+)", header)
    height = re.search(rb" H(\d+)", header)
    if not header.startswith(b"YUV4MPEG2") or not frame_header.startswith(b"FRAME"):
        raise AnchorError(f"{what}: no decoded frame")
    if not (width and height):
        raise AnchorError(f"{what}: decoded stream without a size")
    return int(width.group(1)), int(height.group(1)), raw


@cache
def encoder_library_version(encoder: str) -> str:
    """Version that an FFmpeg encoder library reports, e.g. "x265 4.3+49-020d7054", by a tiny
    real encode with the library's own verbose log (FFmpeg itself does not print it)."""
    exe = ffmpeg_exe()
    probe = ["-f", "lavfi", "-i", "color=c=gray:s=64x64:d=0.04", "-frames:v", "1"]
    if encoder == "libx265":
        args = [exe, "-v", "error", "-nostdin", *probe, "-pix_fmt", "yuv444p", "-c:v", "libx265"]
        args += ["-x265-params", "log-level=full", "-f", "null", "-"]
        match = re.search(r"HEVC encoder version (\S+)", run_tool(args, "libx265 version probe"))
        return f"x265 {match.group(1)}" if match else "x265 (version not reported)"
    if encoder == "libvvenc":
        # libvvenc prints nothing through FFmpeg; its version is the one string it embeds.
        blob = Path(exe).read_bytes()
        match = re.search(rb"H\.266/VVC Encoder, version ([0-9A-Za-z.+-]+)", blob)
        return f"VVenC {match.group(1).decode()}" if match else "VVenC (version not found)"
    raise ValueError(f"no version probe for encoder {encoder!r}")


def banner_version(args: Sequence[str | None], pattern: str) -> str:
    """The version a tool's help banner gives (`pattern`'s first group), or says it gives none."""
    match = re.search(pattern, tool_banner(args))
    return match.group(1) if match else "(version not reported)"


def tool_banner(args: Sequence[str | None]) -> str:
    """What a tool prints for its help (many exit non-zero there), or '' when it cannot run."""
    try:
        proc = subprocess.run(
            [str(a) for a in args], capture_output=True, text=True, timeout=60, errors="replace"
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (proc.stdout or "") + (proc.stderr or "")
