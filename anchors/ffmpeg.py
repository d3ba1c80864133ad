"""Running the imageio-ffmpeg wheel's FFmpeg binary, and external tools, for the anchors.

Every anchor that has no Python binding goes through a subprocess: raw planar frames are written
to a temporary folder, the tool encodes them to a file, and decoding asks FFmpeg for raw planar
frames on stdout. Failures become one-line AnchorError messages that name the tool and the last
line it printed, so that a CTC job fails clearly while the rest of the run goes on.

Every tool runs under a timeout and an OS limit on its address space (RLIMIT_AS,
`tool_memory_limit`): a job's memory is watched where it runs (a Dask worker's memory limit, the
harness's worker plan) only in the job's own process, never in the processes it starts, so a
runaway encoder would otherwise take the machine's memory unseen. A tool that fails under the
limit says so in its error.
"""

from __future__ import annotations

import math
import os
import re
import resource
import shutil
import signal
import subprocess
from collections.abc import Callable, Sequence
from functools import cache, partial
from pathlib import Path

import imageio_ffmpeg
import numpy as np

TIMEOUT_S = 900  # the slowest embedded encode (VVenC slower on a Kodak image) is ~1 minute
MEMORY_ENV = "CTC_TOOL_MEMORY_GB"
"""The environment variable that sets every tool's address-space limit, in GB (10^9 bytes)."""
DEFAULT_TOOL_MEMORY = 16_000_000_000
"""A tool's address space unless MEMORY_ENV says otherwise. FFmpeg's x265, VVenC and libjxl
encoders and its decoders all ran within 1.5 GB at 4096x3072 (and failed at 0.3-0.6 GB at
2048x1536), so 16 GB leaves about four times what the largest picture a run accepts (2^25
pixels) needs: only a runaway tool meets it."""
TOOL_MEMORY_GB_RANGE = (0.01, 65536.0)
"""The values MEMORY_ENV may take, in GB: below 10 MB no tool starts (and a tiny value would be
reported as "0 GB"), above 64 TiB the limit overflows what setrlimit takes in the tool's
process (a typing error either way)."""


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


def tool_memory_limit() -> int:
    """The address space, in bytes, every tool runs with: MEMORY_ENV (GB) when set, else
    DEFAULT_TOOL_MEMORY. AnchorError (one line, naming MEMORY_ENV) for a value that is not a
    positive number, or is outside TOOL_MEMORY_GB_RANGE."""
    text = os.environ.get(MEMORY_ENV)
    if text is None:
        return DEFAULT_TOOL_MEMORY
    try:
        gb = float(text)
    except ValueError:
        gb = math.nan
    if not (math.isfinite(gb) and gb > 0):
        raise AnchorError(f"{MEMORY_ENV} must be a positive number of GB, got {text!r}")
    low, high = TOOL_MEMORY_GB_RANGE
    if not low <= gb <= high:
        raise AnchorError(f"{MEMORY_ENV} must be {low:g} to {high:g} GB, got {text!r}")
    return round(gb * 1e9)


def _limits(memory: int) -> Callable[[], None]:
    """What the tool's process does before it runs the tool: limit its address space to
    `memory` bytes (or to the hard limit this process has, when that is lower). Bound here, so
    that the forked child runs no Python of its own beyond one call."""
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    limit = memory if hard == resource.RLIM_INFINITY else min(memory, hard)
    return partial(resource.setrlimit, resource.RLIMIT_AS, (limit, limit))


def _run(
    args: Sequence[str], what: str, timeout: float, text: bool
) -> tuple[subprocess.CompletedProcess, int]:
    """Run one tool under its timeout and memory limit (the process and the limit it had)."""
    memory = tool_memory_limit()
    options = {"text": True, "errors": "replace"} if text else {}
    try:
        proc = subprocess.run(
            [str(a) for a in args],
            capture_output=True,
            timeout=timeout,
            preexec_fn=_limits(memory),
            **options,
        )
    except FileNotFoundError:
        raise AnchorError(f"{what}: binary not found: {args[0]}") from None
    except subprocess.TimeoutExpired:
        raise AnchorError(f"{what}: no result within {timeout:g} s") from None
    return proc, memory


def _failure(what: str, returncode: int, last: str, memory: int) -> AnchorError:
    """The one-line error of a tool that exited with `returncode` (negative: the signal that
    killed it), its last line `last`. One killed by a signal, or whose line blames memory, an
    allocation, a resource (a thread's stack) or an external library (FFmpeg's words for a
    library that failed), may have met its memory limit: the error then says what it was."""
    how = f"killed by {_signal_name(-returncode)}" if returncode < 0 else f"exit {returncode}"
    message = f"{what} failed ({how})" + (f": {last}" if last else "")
    if returncode < 0 or re.search(_MEMORY_WORDS, last, re.IGNORECASE):
        message += (
            f" (it runs with at most {memory / 1e9:g} GB of address space; {MEMORY_ENV} raises it)"
        )
    return AnchorError(message)


_MEMORY_WORDS = r"memory|alloc|resource temporarily unavailable|external library"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def run_tool(args: Sequence[str], what: str, timeout: float = TIMEOUT_S) -> str:
    """Run a command (under its timeout and memory limit); return its output text, or raise
    AnchorError with one line on failure."""
    proc, memory = _run(args, what, timeout, text=True)
    output = (proc.stderr or "") + (proc.stdout or "")
    if proc.returncode != 0:
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        errors = [line for line in lines if line.lower().startswith("error")]
        last = (errors or lines or [""])[-1]  # VTM prints its banner after the error line
        raise _failure(what, proc.returncode, last, memory)
    return output


def run_bytes(args: Sequence[str], what: str, timeout: float = TIMEOUT_S) -> bytes:
    """Run a command (under its timeout and memory limit) and return its stdout as bytes (raw
    frames from FFmpeg)."""
    proc, memory = _run(args, what, timeout, text=False)
    if proc.returncode != 0:
        text = proc.stderr.decode(errors="replace").strip().splitlines()
        raise _failure(what, proc.returncode, text[-1] if text else "", memory)
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
            [str(a) for a in args], capture_output=True, text=True, timeout=60, errors="replace",
            preexec_fn=_limits(tool_memory_limit()),
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (proc.stdout or "") + (proc.stderr or "")
