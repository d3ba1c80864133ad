"""The CTC runner: jobs (codec x image x target) in parallel worker processes, results in the
output folder's SQLite store, resumable.

Finished jobs (a row with the same key whose bitstream file is intact) are skipped, so a rerun,
or a run restarted after being killed, redoes only what is missing. Workers compute; only this
process writes the store, one committed row per finished job. One run at a time may use an
output folder (an exclusive lock on DIR/.lock, which the kernel releases if the run is killed).

The jobs run on an executor (ctc.executors): the local process pool (LocalPool) by default, or a
Dask distributed cluster (`scheduler`); either way the outcomes come back here to be stored, so
resuming works the same. A job that raises is run again up to `retries` times, then recorded as
failed, and the run goes on.

The local pool's workers never outlive the run: they end when this process dies, even by
SIGKILL, and Ctrl-C (KeyboardInterrupt) kills them at once instead of waiting for the encodes
they are running.

Every job runs torch (and OpenMP, MKL, OpenBLAS) on the run's `threads` (default 1, the
single-threaded times CTC report; parallelism comes from jobs), in this process and in workers
alike. The workers asked for are planned against the memory available (plan_workers): fewer run
when that many would not fit with the dataset's largest image, and the run says so.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import multiprocessing
import os
import platform
import re
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    BrokenExecutor,
    Future,
    ProcessPoolExecutor,
    wait,
)
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ctc import frozen as frozen_results
from ctc import harness, metrics
from ctc.codec import DEFAULT_PEAK_BYTES_PER_PIXEL, Codec, estimated_peak_memory
from ctc.condition import Condition, load_condition
from ctc.datasets import Dataset, resolve_dataset
from ctc.executors import Executor, ExecutorError, Outcome, Scheduler, parse_scheduler
from ctc.images import FORMATS as IMAGE_FORMATS
from ctc.images import MAX_PIXELS, load_image
from ctc.job import (
    Job,
    decode_checked,
    execute,
    reconstruction_path,
    write_reconstruction,
)
from ctc.registry import CodecLoadError, load_codec, load_codecs
from ctc.store import JobKey, Store, now
from imagefile.source import open_header, open_regular, sniff


class RunError(RuntimeError):
    """The run cannot start (no usable codec, output folder in use)."""


@dataclass
class RunSummary:
    """What a run did; `rows` are the store's rows for every job of the run (old and new)."""

    run_id: int
    out: Path
    condition: Condition
    total: int
    skipped: int
    done: int = 0
    frozen: int = 0  # jobs answered by an anchor's frozen results (ctc.frozen), not encoded
    reconstructed: int = 0  # finished jobs whose missing kept reconstruction was decoded now
    failures: list[tuple[JobKey, str]] = field(default_factory=list)
    codec_errors: dict[str, str] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    threads: int = 1  # torch threads per job
    workers: WorkerPlan | None = None  # how many workers ran, and why no more
    scheduler: str | None = None  # the Dask cluster that ran the jobs, None: the local pool


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


class _LogLines:
    """A stream for tqdm that writes each redraw of its bar as a line of its own: a log (not a
    terminal) gets at most one progress line every 30 s instead of carriage returns."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").rstrip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def _folder_name(codec: str) -> str:
    """A codec spec as one safe folder name (a spec may hold a model path: nic:../m.pt)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", codec).lstrip(".") or "_"


def plan(
    condition: Condition,
    codecs: dict[str, Codec],
    dataset: Dataset,
    out: Path,
    max_pixels: int | None = MAX_PIXELS,
    keep_reconstructions: bool = False,
) -> tuple[list[Job], dict[str, str]]:
    """Every job of the run, and the dataset's pixel checksums by image name (every image read,
    one at a time, and refused above max_pixels; DatasetError names every unusable one). Jobs
    name their images by absolute path: a worker elsewhere (a Dask cluster) has another
    current folder."""
    checksums = dataset.checksums(max_pixels=max_pixels)
    paths = {im.name: str(Path(im.path).absolute()) for im in dataset.images}
    jobs = []
    for name, codec in codecs.items():
        ver = codec.version()
        ext = getattr(codec, "extension", "bin")
        for image, digest in checksums.items():
            for target in condition.targets_bpp:
                rel = (
                    f"bitstreams/{_folder_name(name)}-{_short_hash(ver)}/{condition.hash[:8]}/"
                    f"{image}-{digest[:8]}/{target!r}bpp.{ext}"
                )
                jobs.append(
                    Job(
                        name, ver, image, paths[image], digest, target, condition, str(out), rel,
                        max_pixels, keep_reconstructions,
                    )
                )  # fmt: skip
    return jobs, checksums


def _is_finished(job: Job, finished: dict[JobKey, Any], out: Path) -> bool:
    entry = finished.get(job.key)
    if entry is None or entry.bitstream.startswith(frozen_results.PREFIX):
        return False
    path = out / entry.bitstream
    return path.is_file() and path.stat().st_size == entry.bytes


def _missing_reconstructions(
    jobs: list[Job], finished: dict[JobKey, Any], out: Path
) -> list[tuple[Job, str]]:
    """Finished jobs (their own bitstream intact) whose kept reconstruction is not there, with
    their bitstream paths."""
    missing = []
    for job in jobs:
        if _is_finished(job, finished, out):
            bitstream = finished[job.key].bitstream
            rec = reconstruction_path(bitstream)
            if rec is not None and not (out / rec).is_file():
                missing.append((job, bitstream))
    return missing


def _reconstruct(job: Job, bitstream: str, codec: Codec, out: Path) -> None:
    """Decode a finished job's kept bitstream and keep the result as its reconstruction (the
    row is left as it is: the decoder is deterministic, so this is what the row measured)."""
    data = (out / bitstream).read_bytes()
    shape = load_image(job.image_path, max_pixels=job.max_pixels).shape
    write_reconstruction(out, bitstream, decode_checked(codec, job.codec, data, shape))


def _refuse_changed_images(finished: dict[JobKey, Any], checksums: dict[str, str], out: Path):
    """Raise RunError when an image of the dataset has other pixels than the one the folder's
    results were made from: the two would mix in results and reports."""
    stored = {key[2]: key[3] for key in finished}
    changed = sorted(
        name for name, digest in checksums.items() if stored.get(name, digest) != digest
    )
    if changed:
        raise RunError(
            f"{out} holds results of other pixels for image(s) {', '.join(changed)} under this "
            "condition; run into a new --out (or remove the folder) so the two do not mix"
        )


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    out.mkdir(parents=True, exist_ok=True)
    # Never truncate, follow a link or wait on a FIFO: the lock file holds nothing, and a link
    # planted in its place must not let the run empty another file.
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(out / ".lock", flags, 0o644)
    except OSError as e:
        raise RunError(f"{out / '.lock'}: cannot use it as the run's lock ({e.strerror})") from None
    with open(fd, "rb") as lock:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RunError(f"{out / '.lock'}: not a regular file; remove it")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunError(f"another ctc run is using {out}") from None
        yield


# --- threads -----------------------------------------------------------------------------------

DEFAULT_THREADS = 1
"""Torch threads per job. CTC times (EncT, DecT) are single-threaded: JVET's are those of its
single-threaded reference software, and the anchors run their encoders on one thread
(docs/anchors.md); more cores are used by running more jobs (-j). Measured on a shared 2-core
machine: nic's encodes took twice as long on 2 threads as on 1 (docs/ctc.md, Threads)."""
MAX_THREADS = 1024
"""The most threads per job accepted (a larger count is a typing error)."""
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""The environment variables by which OpenMP, MKL and OpenBLAS (torch's among them) choose
their thread count when they load."""
_THREADS_IN_USE: list[int] = []
"""The thread counts of the threads_used blocks this process is in, the innermost last."""


def threads_in_use() -> int:
    """The torch threads ctc's work runs on now: those of the innermost threads_used block (a
    command's --threads), else DEFAULT_THREADS. Complexity measurements run on these and are
    cached under them (ctc.complexity_cache.machine)."""
    return _THREADS_IN_USE[-1] if _THREADS_IN_USE else DEFAULT_THREADS


def set_threads(threads: int) -> None:
    """Run torch on `threads` threads in this process from now on: torch.set_num_threads where
    torch is loaded, and THREAD_VARIABLES for what loads later (torch too, and any process
    started from here)."""
    if not 1 <= threads <= MAX_THREADS:
        raise ValueError(f"threads must be 1 to {MAX_THREADS}, got {threads}")
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


@contextmanager
def threads_used(threads: int) -> Iterator[None]:
    """set_threads(threads) inside; after, the variables are restored and, where torch was
    loaded before, its thread count (torch first loaded inside keeps `threads`)."""
    saved = {variable: os.environ.get(variable) for variable in THREAD_VARIABLES}
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    set_threads(threads)
    _THREADS_IN_USE.append(threads)
    try:
        yield
    finally:
        _THREADS_IN_USE.pop()
        for variable, value in saved.items():
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value
        if torch is not None:
            torch.set_num_threads(before)


# --- workers planned from memory -----------------------------------------------------------------

HARNESS_BASE_BYTES = 300_000_000
"""What a job's process holds whatever the image: Python, numpy, scipy, Pillow and ctc (80 MB
measured before a job) with room for the metrics' libraries."""
HARNESS_BYTES_PER_PIXEL = 320
"""What a job takes per pixel beside its codec: the original, the reconstruction and the
metrics' arrays, with VMAF's FFmpeg process. Measured with the JPEG anchor and every metric
(jpeg_ai_ctc) at 4096x3072: the process grew by 183 bytes/pixel, FFmpeg peaked at 112."""


@dataclass(frozen=True)
class WorkerPlan:
    """How many workers a run uses, and why: the number asked for and planned, the largest
    image (width, height) left to code, the bytes one worker needs for it and the bytes
    available (None where unknown), and the line that says when fewer run or one does not fit."""

    requested: int
    workers: int
    image: tuple[int, int] | None = None
    per_worker: int | None = None
    available: int | None = None
    note: str | None = None

    @property
    def fits(self) -> bool:
        """Whether the planned workers fit in the memory available (True where unknown)."""
        unknown = self.per_worker is None or self.available is None
        return unknown or self.workers * self.per_worker <= self.available

    def record(self) -> dict[str, Any]:
        """The plan as the run record keeps it."""
        return {
            "requested": self.requested, "workers": self.workers,
            "largest_image": list(self.image) if self.image else None,
            "bytes_per_worker": self.per_worker, "bytes_available": self.available,
            "note": self.note,
        }  # fmt: skip


def _meminfo_available() -> int | None:
    """MemAvailable of /proc/meminfo in bytes: free memory plus what the kernel can reclaim."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """Bytes left under this process's cgroup v2 memory limit, None without a limit."""
    folder = Path("/sys/fs/cgroup")
    try:
        limit = (folder / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((folder / "memory.current").read_text()))
    except (OSError, ValueError):
        return None


def available_memory() -> int | None:
    """Bytes new work can use here now: MemAvailable (else the free pages), or the room left
    under a cgroup v2 limit when that is less; None where neither is known."""
    free = _meminfo_available()
    if free is None:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            free = None
    room = _cgroup_room()
    known = [v for v in (free, room) if v is not None]
    return min(known) if known else None


def _gb(size: int) -> str:
    """Bytes as GB with one decimal (MB below 1 GB), as the plan's note says them."""
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


def job_memory(codecs: dict[str, Codec], width: int, height: int) -> tuple[int, list[str]]:
    """(the most bytes one job on a width x height image takes with any of `codecs`: the
    harness's and the largest codec estimate; the codecs that gave no estimate of their own).
    Raises RunError for a codec whose peak_memory answers something that is not bytes."""
    harness = HARNESS_BASE_BYTES + HARNESS_BYTES_PER_PIXEL * width * height
    largest, guessed = 0, []
    for name, codec in codecs.items():
        try:
            size, own = estimated_peak_memory(codec, width, height)
        except ValueError as e:
            raise RunError(str(e)) from None
        largest = max(largest, size)
        if not own:
            guessed.append(name)
    return harness + largest, guessed


def plan_workers(
    requested: int,
    codecs: dict[str, Codec],
    sizes: Sequence[tuple[int, int]],
    available: int | None,
) -> WorkerPlan:
    """The workers to run: `requested`, fewer where that many would not fit in `available`
    bytes with the most demanding of `sizes` (width, height of the images left to code), at
    least one (with a note that it may not fit). No sizes or unknown memory: as requested."""
    if not sizes or not codecs:
        return WorkerPlan(requested, requested, available=available)
    # The size whose job needs the most (a codec may pad: 1 x 65536 can need more than 300 x 300).
    needs = {size: job_memory(codecs, *size) for size in dict.fromkeys(sizes)}
    (width, height), (need, guessed) = max(needs.items(), key=lambda item: item[1][0])
    plan = WorkerPlan(requested, requested, (width, height), need, available)
    if available is None or requested * need <= available:
        return plan
    fit = available // need
    assumed = ""
    if guessed:
        per_pixel = DEFAULT_PEAK_BYTES_PER_PIXEL
        assumed = (
            f" ({', '.join(guessed)}: no estimate of its own, {per_pixel} bytes/pixel assumed)"
        )
    images = f"{width}x{height} images{assumed}"
    if fit >= 1:
        note = (
            f"{requested} workers would need ~{_gb(requested * need)} for {images}; running "
            f"{fit} ({_gb(available)} available)"
        )
        return WorkerPlan(requested, fit, (width, height), need, available, note)
    note = (
        f"one worker would need ~{_gb(need)} for {images}, more than the {_gb(available)} "
        "available; running 1, which may run out of memory"
    )
    return WorkerPlan(requested, 1, (width, height), need, available, note)


def _image_sizes(jobs: Sequence[Job]) -> list[tuple[int, int]]:
    """(width, height) of each image the jobs code, from the files' headers, as imagefile
    reads them (plan() has read every image whole already: they are valid)."""
    sizes = []
    for path in sorted({Path(job.image_path) for job in jobs}):
        with open_regular(path) as fp:
            sizes.append(open_header(fp, path, sniff(fp, path, IMAGE_FORMATS)).size)
    return sizes


# Worker processes: codecs are loaded once per process, by name, through the registry.
_WORKER_CODECS: dict[str, Codec] = {}
PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_POLL_SECONDS = 0.5


def _watch_parent(parent: int, interval: float = PARENT_POLL_SECONDS) -> None:
    """Exit this process as soon as `parent` is no longer its parent (it died)."""
    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(1)


def _exit_with_parent(parent: int) -> None:
    """End this worker when the runner process `parent` dies, even by SIGKILL, so that no
    worker goes on writing bitstreams that no row will refer to: on Linux the kernel kills it
    (PR_SET_PDEATHSIG), elsewhere a watchdog thread sees it reparented. (The kernel acts when
    the thread that started the worker ends: pool.submit starts them, from the thread that
    holds the pool until every worker has ended.)"""
    prctl = getattr(ctypes.CDLL(None), "prctl", None) if sys.platform == "linux" else None
    if prctl is not None and prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
        if os.getppid() != parent:  # it died before the request
            os._exit(1)
        return
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _init_worker(threads: int, parent: int, ignore_sigint: bool) -> None:
    _exit_with_parent(parent)
    # Ctrl-C at the terminal reaches the workers too: they end quietly (the runner records the
    # run as interrupted). They start with SIGINT blocked (sigint_blocked), so that one pressed
    # while they were starting is handled here, not as a traceback. A run started with SIGINT
    # ignored (`ctc run ... &` in a script) keeps its workers ignoring it too.
    signal.signal(signal.SIGINT, signal.SIG_IGN if ignore_sigint else signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    set_threads(threads)  # before a codec loads torch, so that it starts on them


@contextmanager
def sigint_blocked() -> Iterator[None]:
    """SIGINT held back in this thread, and so in the processes it starts (they inherit the
    mask); one that arrives meanwhile is delivered when the block ends."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _run_in_worker(job: Job) -> dict[str, Any]:
    codec = _WORKER_CODECS.get(job.codec)
    if codec is None:
        codec = _WORKER_CODECS[job.codec] = load_codec(job.codec)
    if codec.version() != job.codec_version:
        raise CodecLoadError(job.codec, "version changed while the run was starting")
    return execute(job, codec)


def _record(
    condition: Condition,
    dataset: Dataset,
    checksums: dict[str, str],
    codecs: dict[str, Codec],
    workers: WorkerPlan,
    threads: int,
    scheduler: Scheduler | None,
    retries: int,
) -> dict[str, Any]:
    """The run record: everything needed to reproduce the run's rows (the harness's version and
    source hash among them, ctc.harness), and what their times depend on (platform, workers and
    where they ran, torch threads per job)."""
    return {
        "condition": condition.to_dict(),
        "condition_hash": condition.hash,
        "dataset": {
            "name": dataset.name,
            "pixel_sha256": checksums,
            **({"classes": dataset.class_record()} if dataset.classes else {}),
        },
        "codecs": {name: codec.version() for name, codec in codecs.items()},
        "tools": metrics.tool_versions() if "vmaf" in condition.metrics else {},
        "ctc_version": harness.ctc_version(),
        "ctc_source_sha256": harness.source_sha256(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "jobs": workers.workers,
        "threads": threads,
        "worker_plan": workers.record(),
        "scheduler": None if scheduler is None else str(scheduler),
        "retries": retries,
    }


MAX_RETRIES = 100
"""The most times a run may run a failing job again (a larger count is a typing error)."""


def run(
    condition: Condition | str,
    codecs: Sequence[str] | None = None,
    dataset: str | Path | Dataset | None = None,
    jobs: int = 1,
    out: str | Path | None = None,
    progress: bool | None = None,
    frozen: bool = True,
    max_pixels: int | None = MAX_PIXELS,
    keep_reconstructions: bool = False,
    threads: int = DEFAULT_THREADS,
    memory: int | None = None,
    on_plan: Callable[[WorkerPlan], None] | None = None,
    scheduler: str | None = None,
    worker_out: str | None = None,
    retries: int = 0,
) -> RunSummary:
    """Run a condition (name, path or Condition) and return what was done.

    codecs: names in the `ctc.codecs` entry-point group (default: the condition's codecs and
    anchors); a codec that fails to load is skipped and reported in `codec_errors`, and
    RunError is raised only when none loads. dataset: a name, folder or Dataset (default: the
    condition's). out: the output folder (default: the condition's). progress: show a tqdm bar
    (None: also when stderr is not a terminal, redrawn every 30 s). frozen: answer an anchor's
    jobs from its matching frozen results (ctc.frozen) instead of encoding; False encodes all.
    max_pixels: the largest original (width x height) read, None for no limit; a larger one is
    named in the DatasetError raised before any job starts. keep_reconstructions: every job
    also keeps its decoded image as a PNG (ctc.job.reconstruction_path); finished jobs that lack
    one get it by decoding their kept bitstream, without encoding again or changing their rows.
    threads: torch threads of every job (DEFAULT_THREADS), in this process and in workers.
    jobs: the workers asked for; fewer run where that many would not fit in `memory` bytes (None:
    available_memory()) with the largest image left to code (plan_workers); a plan with a note
    (fewer workers, or one that does not fit) is passed to `on_plan` (default: the note printed
    on stderr, as a warning where even one worker does not fit).
    scheduler: run the jobs on a Dask cluster instead of the local pool (ctc.executors):
    `tcp://HOST:PORT` (its workers, whatever `jobs` and `memory` say) or `local:N` (N workers
    started here, planned against memory like `jobs`). worker_out: with a scheduler, the output
    folder as the workers see it (an absolute path on a shared file system), where they write
    bitstreams themselves; None: they return them, and this process writes them. retries: how
    many times a job that raises is run again before it is recorded as failed.
    """
    cond = condition if isinstance(condition, Condition) else load_condition(condition)
    names = list(dict.fromkeys(codecs or (*cond.codecs, *cond.anchors)))
    data = dataset if isinstance(dataset, Dataset) else resolve_dataset(dataset or cond.dataset)
    folder = Path(out or cond.output).resolve()
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if not 1 <= threads <= MAX_THREADS:
        raise ValueError(f"threads must be 1 to {MAX_THREADS}, got {threads}")
    if memory is not None and memory <= 0:
        raise ValueError(f"memory must be a positive number of bytes, got {memory}")
    if not 0 <= retries <= MAX_RETRIES:
        raise ValueError(f"retries must be 0 to {MAX_RETRIES}, got {retries}")
    cluster = None if scheduler is None else parse_scheduler(scheduler)
    if worker_out is not None and (cluster is None or not Path(worker_out).is_absolute()):
        raise ValueError(
            f"worker_out must be an absolute path, with a scheduler; got {worker_out!r}"
        )
    loaded, errors = load_codecs(names)
    if not loaded:
        reasons = "; ".join(str(e) for e in errors.values())
        raise RunError(f"no codec could be loaded: {reasons}")
    with _locked(folder), Store(folder) as store:
        all_jobs, checksums = plan(cond, loaded, data, folder, max_pixels, keep_reconstructions)
        finished = store.finished(cond.hash)
        _refuse_changed_images(finished, checksums, folder)
        available = frozen_results.matching(all_jobs, loaded) if frozen else {}
        stand_ins = {  # a job finished for real keeps its own row
            j.key: available[j.key]
            for j in all_jobs
            if j.key in available and not _is_finished(j, finished, folder)
        }
        todo = [
            j for j in all_jobs if j.key not in stand_ins and not _is_finished(j, finished, folder)
        ]
        for name, codec in loaded.items():  # a codec that cannot encode here: frozen jobs only
            reason = getattr(codec, "unavailable", None)
            left_out = {j.key for j in todo if j.codec == name}
            if reason and left_out:
                errors[name] = RuntimeError(
                    f"{reason}; {len(left_out)} of its jobs have no frozen result"
                )
                all_jobs = [j for j in all_jobs if j.key not in left_out]
                todo = [j for j in todo if j.key not in left_out]
        busy = {name: loaded[name] for name in dict.fromkeys(j.codec for j in todo)}
        free = available_memory() if memory is None else memory
        cluster = cluster if todo else None  # nothing to run: no cluster to start or reach
        asked = (cluster.local_workers if cluster else jobs) or 1  # a running cluster: its own
        workers = plan_workers(asked, busy, _image_sizes(todo), free)
        if workers.note and (cluster is None or cluster.local_workers):
            (on_plan or _say_plan)(workers)
        executor = (
            LocalPool(loaded, workers.workers, threads, retries)
            if cluster is None
            else _dask_executor(cluster, folder, threads, retries, worker_out, workers.workers)
        )
        with _entered(executor):  # a cluster that cannot be reached stops the run here
            if cluster is not None and cluster.address:
                notes = executor.notes  # a DaskExecutor's: workers that would slow the jobs
                workers = _cluster_plan(cluster, executor.workers, notes, on_plan or _say_plan)
            record = _record(cond, data, checksums, loaded, workers, threads, cluster, retries)
            record["frozen"] = sorted({r["bitstream"] for r in stand_ins.values()})
            run_id = store.begin_run(cond.name, cond.hash, record)
            summary = RunSummary(
                run_id, folder, cond, len(all_jobs), len(all_jobs) - len(todo),
                codec_errors={n: str(e) for n, e in errors.items()}, threads=threads,
                workers=workers, scheduler=None if cluster is None else str(cluster),
            )  # fmt: skip
            terminal = sys.stderr.isatty()
            bar = tqdm(
                total=len(all_jobs), initial=summary.skipped, desc=f"ctc {cond.name}", unit="job",
                disable=progress is False, dynamic_ncols=True, mininterval=0.1 if terminal else 30,
                file=sys.stderr if terminal else _LogLines(sys.stderr),
            )  # fmt: skip
            for key, row in stand_ins.items():
                entry = finished.get(key)
                if entry is None or entry.bitstream != row["bitstream"]:
                    store.add_result({**row, "run_id": run_id, "finished_at": now()})
            summary.frozen = len(stand_ins)
            status = "interrupted"
            missing = (
                _missing_reconstructions(all_jobs, finished, folder) if keep_reconstructions else []
            )
            try:
                with threads_used(threads):  # reconstructions and -j 1 jobs run here
                    for job, bitstream in missing:
                        try:
                            _reconstruct(job, bitstream, loaded[job.codec], folder)
                            summary.reconstructed += 1
                        except Exception as e:  # the row stays; the run goes on
                            summary.failures.append(
                                (job.key, f"reconstruction: {type(e).__name__}: {e}")
                            )
                    outcomes = executor.run(todo)
                    with closing(outcomes):  # ends the workers' jobs on errors
                        for job, row, error in outcomes:
                            if error is None:
                                store.add_result({**row, "run_id": run_id, "finished_at": now()})
                                summary.done += 1
                            else:
                                store.add_failure(job.key, run_id, error)
                                summary.failures.append((job.key, error))
                            bar.update(1)
                status = "failed" if summary.failures else "finished"
            except ExecutorError:  # the cluster went away: the rows stored so far stay
                status = "failed"
                raise
            finally:
                bar.close()
                store.end_run(run_id, status)
        summary.rows = store.results(j.key for j in all_jobs)
    return summary


def _dask_executor(
    cluster: Scheduler, out: Path, threads: int, retries: int, worker_out: str | None, workers: int
) -> Executor:
    """The Dask executor of `cluster`, with `workers` for a local one. distributed is imported
    here only: it takes most of a second, which a run without a scheduler does not pay."""
    from ctc.executors.dask_cluster import DaskExecutor

    local = workers if cluster.local_workers else None
    return DaskExecutor(cluster, out, threads, retries, worker_out, local)


@contextmanager
def _entered(executor: Executor) -> Iterator[Executor]:
    """Inside `executor` (its workers reached or started); its ExecutorError as a RunError."""
    try:
        with executor:
            yield executor
    except ExecutorError as e:
        raise RunError(str(e)) from None


def _cluster_plan(
    cluster: Scheduler, workers: int, notes: list[str], on_plan: Callable[[WorkerPlan], None]
) -> WorkerPlan:
    """The plan of a run on a running cluster: its `workers` now (they plan their own memory),
    with a note, passed to `on_plan`, where there are none yet (the jobs wait for them) or
    where the executor has `notes`."""
    if not workers:
        notes = [f"the Dask scheduler at {cluster} has no workers yet: the jobs wait for them"]
    plan = WorkerPlan(workers, workers, note="; ".join(notes) or None)
    if plan.note:
        on_plan(plan)
    return plan


def _say_plan(plan: WorkerPlan) -> None:
    """The runner's default for a plan with a note: the note on stderr."""
    print(f"ctc: {'' if plan.fits else 'warning: '}{plan.note}", file=sys.stderr, flush=True)


class LocalPool:
    """The embedded default executor (ctc.executors): `workers` spawned processes on this
    machine, each on `threads` torch threads, that end with the run (PR_SET_PDEATHSIG, or a
    watchdog thread) and are killed at once on Ctrl-C; or, for one worker or one job, the run's
    own process on the threads its caller set. A job that raises is run again up to `retries`
    times (in a process that crashed, the pool is broken: its jobs fail without retries)."""

    def __init__(
        self,
        codecs: dict[str, Codec],
        workers: int,
        threads: int = DEFAULT_THREADS,
        retries: int = 0,
    ) -> None:
        self.codecs = codecs
        self.workers = workers
        self.threads = threads
        self.retries = retries

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def run(self, todo: Sequence[Job]) -> Iterator[Outcome]:
        """Yield (job, row, None) or (job, None, error message) as jobs finish."""
        if self.workers == 1 or len(todo) <= 1:
            for job in todo:
                yield self._in_process(job)
            return
        context = multiprocessing.get_context("spawn")
        ignore_sigint = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        pool = ProcessPoolExecutor(
            self.workers, context, _init_worker, (self.threads, os.getpid(), ignore_sigint)
        )

        def submit(job: Job) -> Future:
            with sigint_blocked():  # submit starts the workers
                return pool.submit(_run_in_worker, job)

        try:
            pending = {submit(job): (job, 0) for job in todo}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job, tries = pending.pop(future)
                    error = future.exception()
                    if error is None:
                        yield job, future.result(), None
                    elif tries < self.retries and not isinstance(error, BrokenExecutor):
                        pending[submit(job)] = (job, tries + 1)
                    else:  # includes a crashed worker (BrokenProcessPool)
                        yield job, None, f"{type(error).__name__}: {error}"
        except BaseException:  # Ctrl-C, or the caller stopped: do not wait for running encodes
            for process in list(pool._processes.values()):  # no public way before Python 3.14
                process.kill()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _in_process(self, job: Job) -> Outcome:
        tries = 0
        while True:
            try:
                return job, execute(job, self.codecs[job.codec]), None
            except Exception as e:  # a job's failure is recorded; the run goes on
                if tries == self.retries:
                    return job, None, f"{type(e).__name__}: {e}"
                tries += 1
