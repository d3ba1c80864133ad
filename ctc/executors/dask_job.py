"""One CTC job as a Dask task: what runs on a Dask worker.

A worker loads each codec once, by its spec, through the registry (from its own installation:
the same codec version must be installed there, or the job fails saying so), and runs one job at
a time whatever its thread count, on the run's torch threads, so that jobs never share a codec
object and their times are those of one job alone (as the local pool's are).

The job reads its original at the path the client planned it at (the pixel checksum it carries
catches any other file there). Its bitstream, and its kept reconstruction when asked for, go
either straight to the output folder as the workers see it (`shared_out`, a shared file system)
or to a private temporary folder, read back and returned with the row so that the client
writes them: nothing a worker does then touches the client's output folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from ctc.codec import Codec
from ctc.job import Job, execute, reconstruction_path
from ctc.registry import CodecLoadError, load_codec
from ctc.runner import set_threads

_CODECS: dict[str, Codec] = {}
_ONE_JOB = threading.Lock()
MALLOC_TRIM = "MALLOC_TRIM_THRESHOLD_"
"""The glibc setting that Dask's nanny gives the workers it starts (65536 unless configured):
glibc then hands freed memory back at once and faults it in again. The same JPEG job took twice
as long in such a worker as in the run's own process, the extra all system time (measured on
Kodak: 0.40-0.54 s against 0.20-0.26 s), and so would its EncT and DecT. Any value also turns
off glibc's adaptive thresholds, so only its absence gives a local process's times."""


def malloc_trim_setting() -> str | None:
    """This worker's MALLOC_TRIM setting, None where it has none (as a local process)."""
    return os.environ.get(MALLOC_TRIM)


def _codec(job: Job) -> Codec:
    """The codec of `job`, loaded once per worker process, checked against the run's version."""
    codec = _CODECS.get(job.codec)
    if codec is None:
        codec = _CODECS[job.codec] = load_codec(job.codec)
    if codec.version() != job.codec_version:
        raise CodecLoadError(
            job.codec,
            f"version {codec.version()!r} on this worker, {job.codec_version!r} in the run: "
            "install the same codec on every worker",
        )
    return codec


def run_job(
    job: Job, threads: int, shared_out: str | None
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Run `job` on this worker: (its row, the files the client must write, by path relative to
    the output folder; none when `shared_out` is the output folder as this worker sees it)."""
    with _ONE_JOB:
        set_threads(threads)
        codec = _codec(job)
        if shared_out is not None:
            return execute(replace(job, out=shared_out), codec), {}
        folder = tempfile.mkdtemp(prefix="ctc-job-")
        try:
            row = execute(replace(job, out=folder), codec)
            files = {job.bitstream: (Path(folder) / job.bitstream).read_bytes()}
            rec = reconstruction_path(job.bitstream)
            if job.keep_reconstruction and rec is not None:
                files[rec] = (Path(folder) / rec).read_bytes()
            return row, files
        finally:
            shutil.rmtree(folder, ignore_errors=True)
