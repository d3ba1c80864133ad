"""One CTC job as a Dask task: what runs on a Dask worker.

A worker loads each codec once, by its spec, through the registry (from its own installation:
the same codec version must be installed there, or the job fails saying so), and runs one job at
a time whatever its thread count, on the run's torch threads, so that jobs never share a codec
object and their times are those of one job alone (as the local pool's are).

The job reads its original at the path the client planned it at (the pixel checksum it carries
catches any other file there). Its bitstream, and its kept reconstruction when asked for, go
either straight to the output folder as the workers see it (`shared_out`, a shared file system)
or to a private temporary folder, read back and returned with the row so that the client
writes them: nothing a worker does then touches the client's output folder. A shared folder
must exist already (a worker never creates it: a mistyped path would fill another folder).

Every job also carries the client's harness identity (nic-ctc version, source hash:
ctc.harness); a worker whose own differs refuses the job, naming both, since different harness
code can give different rows for the same job.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from ctc import harness
from ctc.codec import Codec
from ctc.job import Job, JobError, execute, reconstruction_path
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


def sees_token(folder: str, name: str, content: str) -> bool:
    """Whether this worker finds the file `name` in `folder` holding `content`: the client's
    check that `folder` is its own output folder as this worker sees it (DaskExecutor)."""
    try:
        return (Path(folder) / name).read_text(encoding="ascii") == content
    except (OSError, UnicodeDecodeError):
        return False


def _check_harness(expected: tuple[str, str]) -> None:
    """JobError unless this worker's harness is the client's (`expected`, ctc.harness)."""
    mine = harness.identity()
    if mine != tuple(expected):
        raise JobError(
            f"harness nic-ctc {mine[0]} (source sha256 {mine[1][:12]}) on this worker, "
            f"nic-ctc {expected[0]} (source sha256 {expected[1][:12]}) in the run: install the "
            "same ctc on every worker"
        )


def run_job(
    job: Job, threads: int, shared_out: str | None, expected_harness: tuple[str, str]
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Run `job` on this worker: (its row, the files the client must write, by path relative to
    the output folder; none when `shared_out` is the output folder as this worker sees it).
    `expected_harness`: the client's (nic-ctc version, source hash), which must be this
    worker's."""
    _check_harness(expected_harness)
    with _ONE_JOB:
        set_threads(threads)
        codec = _codec(job)
        if shared_out is not None:
            if not Path(shared_out).is_dir():
                raise JobError(f"{shared_out} is not a folder on this worker (--worker-out)")
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
