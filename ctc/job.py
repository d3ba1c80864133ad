"""One job of a CTC run: one codec, one image, one target bpp.

Runs in a worker process (or in the runner's own process with -j 1) and returns the result row;
it writes only the bitstream file (and, when asked, the decoded image as a PNG), never the store.
bpp is counted from that file as written, and the decoder reads it back from the file, so that
the row describes exactly what is on disk.

A kept reconstruction lies at a path derived from the bitstream's (`reconstruction_path`), so
the store needs no column for it and keeping one changes neither a job's key nor its row.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ctc import metrics
from ctc.codec import Codec
from ctc.condition import Condition
from ctc.images import MAX_PIXELS, load_image, pixel_sha256
from ctc.ratecontrol import deviation_percent, match_rate
from ctc.store import JobKey


class JobError(RuntimeError):
    """A job cannot produce a valid row (changed input, malformed reconstruction)."""


@dataclass(frozen=True)
class Job:
    """Everything a worker needs, picklable."""

    codec: str
    codec_version: str
    image: str
    image_path: str
    image_sha256: str
    target_bpp: float
    condition: Condition
    out: str
    bitstream: str  # relative to `out`
    max_pixels: int | None = MAX_PIXELS  # the run's limit on an original's size (not in the key)
    keep_reconstruction: bool = False  # also write the decoded image (not in the key)

    @property
    def key(self) -> JobKey:
        return (
            self.codec, self.codec_version, self.image, self.image_sha256, self.target_bpp,
            self.condition.hash,
        )  # fmt: skip


BITSTREAMS = "bitstreams/"
RECONSTRUCTIONS = "reconstructions/"


def reconstruction_path(bitstream: str) -> str | None:
    """Where the decoded image of a bitstream is kept, relative to the output folder: the same
    path under reconstructions/ instead of bitstreams/, its extension replaced by .png. None for
    a row without a bitstream of its own (a frozen anchor result)."""
    if not bitstream.startswith(BITSTREAMS):
        return None
    rest = bitstream[len(BITSTREAMS) :]
    folder, _, name = rest.rpartition("/")
    stem = name.rpartition(".")[0] or name
    return f"{RECONSTRUCTIONS}{folder}/{stem}.png" if folder else f"{RECONSTRUCTIONS}{stem}.png"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def png_bytes(image: np.ndarray) -> bytes:
    """An 8-bit RGB image as a lossless PNG."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def write_reconstruction(out: str | Path, bitstream: str, decoded: np.ndarray) -> Path:
    """Write `decoded` as the kept reconstruction of `bitstream` (atomically); its path."""
    rel = reconstruction_path(bitstream)
    if rel is None:
        raise JobError(f"{bitstream}: no bitstream of its own, so no reconstruction to keep")
    path = Path(out) / rel
    _write_atomically(path, png_bytes(decoded))
    return path


def decode_checked(codec: Codec, name: str, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """`codec.decode(data)` as an array, JobError unless it is uint8 of `shape`."""
    decoded = np.asarray(codec.decode(data))
    if decoded.shape != shape or decoded.dtype != np.uint8:
        raise JobError(
            f"codec {name!r} decoded {decoded.dtype} {decoded.shape}, expected uint8 {shape}"
        )
    return decoded


def _time_one_encode(
    job: Job, codec: Codec, image: np.ndarray, knob_value: float, expected: bytes
) -> float:
    """Seconds of one `codec.encode` at the knob value the codec's own rate control chose.

    A codec that matches the rate itself reports the time of its whole search; EncT, as JVET's
    CTC define it, is the time of one encode at the final setting, measured like the harness's
    own search measures its chosen encode. The encode must reproduce the file the rate control
    returned (the row's knob value must reproduce its bitstream), else JobError.
    """
    start = time.perf_counter()
    again = codec.encode(image, knob_value)
    seconds = time.perf_counter() - start
    if again != expected:
        raise JobError(
            f"codec {job.codec!r}: encoding at its own chosen {codec.knob.name} = {knob_value:g} "
            f"gave {len(again)} bytes, not the {len(expected)} bytes its rate control returned"
        )
    return seconds


def execute(job: Job, codec: Codec) -> dict[str, Any]:
    """Rate-match, write the bitstream, decode it from disk, measure; return the row.

    encode_seconds and decode_seconds are one encode at the final knob value and one decode
    (JVET EncT / DecT); rate_control_seconds is the whole rate-matching search. A codec that
    calls sys.exit fails this job (JobError), not the run.
    """
    try:
        return _execute(job, codec)
    except SystemExit as e:
        raise JobError(f"codec {job.codec!r} called sys.exit({e.code!r})") from None


def _execute(job: Job, codec: Codec) -> dict[str, Any]:
    image = load_image(job.image_path, max_pixels=job.max_pixels)
    if pixel_sha256(image) != job.image_sha256:
        raise JobError(f"{job.image_path} changed since the run started")
    height, width = image.shape[:2]
    cond = job.condition
    rate = match_rate(codec, image, job.target_bpp, cond.tolerance, cond.max_encodes)
    encode_seconds = rate.encode_seconds
    if rate.method == "codec":
        encode_seconds = _time_one_encode(job, codec, image, rate.knob_value, rate.data)
    path = Path(job.out) / job.bitstream
    _write_atomically(path, rate.data)
    data = path.read_bytes()
    bpp = 8.0 * len(data) / (width * height)
    start = time.perf_counter()
    decoded = np.asarray(codec.decode(data))
    decode_seconds = time.perf_counter() - start
    if decoded.shape != image.shape or decoded.dtype != np.uint8:
        raise JobError(
            f"codec {job.codec!r} decoded {decoded.dtype} {decoded.shape}, "
            f"expected uint8 {image.shape}"
        )
    if job.keep_reconstruction:
        write_reconstruction(job.out, job.bitstream, decoded)
    elif (rec := reconstruction_path(job.bitstream)) is not None:
        (Path(job.out) / rec).unlink(missing_ok=True)  # one kept before is of another bitstream
    return {
        "codec": job.codec,
        "codec_version": job.codec_version,
        "image": job.image,
        "image_sha256": job.image_sha256,
        "target_bpp": job.target_bpp,
        "condition_hash": cond.hash,
        "condition": cond.name,
        "width": width,
        "height": height,
        "knob_name": codec.knob.name,
        "knob_value": rate.knob_value,
        "rate_control": rate.method,
        "n_encodes": rate.n_encodes,
        "bytes": len(data),
        "bpp": bpp,
        "deviation_percent": deviation_percent(bpp, job.target_bpp),
        "in_tolerance": int(cond.tolerance.contains(job.target_bpp, bpp)),
        **metrics.compute(image, decoded, cond.metric_config),
        "encode_seconds": encode_seconds,
        "decode_seconds": decode_seconds,
        "rate_control_seconds": rate.search_seconds,
        "bitstream": job.bitstream,
    }
