"""One job of a CTC run: one codec, one image, one target bpp.

Runs in a worker process (or in the runner's own process with -j 1) and returns the result row;
it writes only the bitstream file, never the store. bpp is counted from that file as written,
and the decoder reads it back from the file, so that the row describes exactly what is on disk.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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

    @property
    def key(self) -> JobKey:
        return (
            self.codec, self.codec_version, self.image, self.image_sha256, self.target_bpp,
            self.condition.hash,
        )  # fmt: skip


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


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
