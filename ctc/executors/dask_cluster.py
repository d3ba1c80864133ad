"""A run's jobs on a Dask distributed cluster: the client side of `ctc run --scheduler`.

`tcp://HOST:PORT` connects to a running scheduler: first a probe asks whatever listens there who
it is, the whole exchange (TCP connect, Dask's handshake, the answer) under one deadline, Dask's
connect timeout (`distributed.comm.timeouts.connect`, 30 s unless configured), since Dask's own
handshake waits without one on a port that accepts and stays silent; a service that is not a
Dask scheduler (one that speaks first, a Dask worker) is named as such. `local:N` starts a
LocalCluster of N worker processes here, one thread each, on the run's torch threads, with SIGINT
blocked so that Ctrl-C reaches only the run, which then closes them.

Every job is submitted at once (the scheduler sees the whole queue, which adaptive clusters
scale on) as a task of `ctc.executors.dask_job.run_job`. A task that raises is run again up to
the run's `retries` times (Dask's own `retries`), then its error is the job's failure. A task
whose worker dies is rescheduled on another worker (so losing a worker loses only the jobs it was
running, and nothing finished: results are fetched from the worker, or computed again where
that worker is gone); once its workers have died more than the scheduler's `allowed-failures`
times (3 unless configured) the job fails with KilledWorker. Only this process writes the
output folder's files (unless the workers write to it as a shared folder) and the store.

LocalCluster's scheduler sends a worker a job only when it is free (`worker-saturation` 1.0, not
Dask's default 1.1, which queues a second job on a one-thread worker): a job that kills its
worker then counts no death against a job queued behind it. A scheduler started elsewhere
should be set the same way (docs/cluster.md).

With `shared_out` (--worker-out), before any job is submitted, every connected worker must find
a token file that this process writes into its output folder (then removes), at the same place
under `shared_out`: a folder that is not the run's, as the workers see it, stops the run with
nothing written there.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError
from contextlib import ExitStack
from multiprocessing import resource_tracker
from pathlib import Path
from types import TracebackType

import dask
from dask.utils import parse_timedelta
from distributed import Client, Future, KilledWorker, LocalCluster, as_completed
from distributed.comm import connect
from distributed.utils import silence_logging_cmgr

from ctc import harness
from ctc.executors import ExecutorError, Outcome, Scheduler
from ctc.executors.dask_job import MALLOC_TRIM, malloc_trim_setting, run_job, sees_token
from ctc.job import Job, JobError, _write_atomically, reconstruction_path
from ctc.runner import THREAD_VARIABLES, sigint_blocked

LOCAL_CONFIG = {
    "distributed.scheduler.worker-saturation": 1.0,
    f"distributed.nanny.pre-spawn-environ.{MALLOC_TRIM}": None,
}
"""What a LocalCluster runs with: a worker gets a job only when free (module docstring), and
without the malloc setting that would slow its jobs down (ctc.executors.dask_job.MALLOC_TRIM)."""


class DaskExecutor:
    """The jobs of a run on a Dask cluster (module docstring); an Executor of ctc.executors.

    out: the run's output folder here. shared_out: the same folder as the workers see it, for
    workers that write bitstreams there themselves (a shared file system); None: they return
    them and this process writes them. local_workers: the workers a `local:N` cluster starts
    (the run's memory plan may have lowered N)."""

    def __init__(
        self,
        scheduler: Scheduler,
        out: Path,
        threads: int,
        retries: int = 0,
        shared_out: str | None = None,
        local_workers: int | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.out = out
        self.threads = threads
        self.retries = retries
        self.shared_out = shared_out
        self.local_workers = local_workers or scheduler.local_workers
        self.workers = 0
        self.notes: list[str] = []
        self._client: Client | None = None
        self._stack = ExitStack()

    def __enter__(self) -> DaskExecutor:
        with ExitStack() as stack:
            # The run reports what happens to its jobs itself; Dask's own log lines (a worker
            # lost, a reconnection given up while closing) would only break its one-line output.
            stack.enter_context(silence_logging_cmgr(logging.CRITICAL))
            if self.scheduler.address is None:
                # multiprocessing starts its resource tracker with SIGINT blocked, then
                # unblocks it in the calling thread: started here first, it leaves the mask of
                # the cluster's threads (and so of the worker processes they start) alone.
                resource_tracker.ensure_running()
                with dask.config.set(LOCAL_CONFIG), sigint_blocked():
                    cluster = LocalCluster(
                        n_workers=self.local_workers,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        silence_logs=logging.CRITICAL,
                        env={variable: str(self.threads) for variable in THREAD_VARIABLES},
                    )
                    stack.callback(cluster.close)
                    self._client = Client(cluster)
            else:
                address = self.scheduler.address
                seconds = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"))
                probe_scheduler(address, seconds)
                try:
                    self._client = Client(address, timeout=seconds)
                except OSError:
                    raise ExecutorError(no_answer(address, seconds)) from None
            stack.callback(self._client.close)
            self.workers = len(self._client.nthreads())
            self._check_workers()
            if self.shared_out is not None:
                self._check_shared_out()
            self._stack = stack.pop_all()
        return self

    def _check_workers(self) -> None:
        """Note the workers whose jobs would run slower than a local process's, and why."""
        settings = self._client.run(malloc_trim_setting)
        slow = sorted({value for value in settings.values() if value is not None})
        if slow:
            count = sum(value is not None for value in settings.values())
            self.notes.append(
                f"{count} of the {len(settings)} Dask workers run with {MALLOC_TRIM}="
                f"{', '.join(slow)} (Dask's nanny sets it), which doubled a job's time in tests "
                "and so its EncT and DecT: start them without it (docs/cluster.md)"
            )

    def _check_shared_out(self) -> None:
        """ExecutorError unless every connected worker sees this run's output folder at
        `shared_out`: each must find the token file written here (module docstring)."""
        name = f".ctc-worker-out-{secrets.token_hex(8)}"
        content = secrets.token_hex(16)
        token = self.out / name
        token.write_text(content, encoding="ascii")
        try:
            seen = self._client.run(sees_token, self.shared_out, name, content)
        finally:
            token.unlink(missing_ok=True)
        blind = sorted(worker for worker, found in seen.items() if not found)
        if blind:
            raise ExecutorError(
                f"--worker-out {self.shared_out} is not this run's output folder {self.out} as "
                f"{len(blind)} of the {len(seen)} Dask workers see it (first {blind[0]}): give "
                "the path under which they see this folder"
            )

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stack.close()

    def run(self, todo: Sequence[Job]) -> Iterator[Outcome]:
        """Submit every job, yield each outcome once its files are in the output folder."""
        if self._client is None:
            raise RuntimeError("DaskExecutor.run outside its `with` block")
        futures: dict[Future, Job] = {
            self._client.submit(
                run_job,
                job,
                self.threads,
                self.shared_out,
                harness.identity(),
                retries=self.retries,
                pure=False,
            ): job
            for job in todo
        }
        try:
            for future in as_completed(futures):
                yield self._outcome(futures.pop(future), future)
        except BaseException:  # Ctrl-C, the caller stopped, the scheduler lost: drop the rest
            if self._client.status == "running":
                self._client.cancel(list(futures), force=True)
            raise

    def _outcome(self, job: Job, future: Future) -> Outcome:
        try:
            row, files = future.result()
        except CancelledError:
            raise ExecutorError(
                f"lost the Dask scheduler at {self.scheduler}; the rows finished so far are "
                "stored, run again to resume"
            ) from None
        except KilledWorker as e:
            return job, None, killed_worker_message(e)
        except Exception as e:  # the job's own error, after its retries: the run goes on
            return job, None, f"{type(e).__name__}: {e}"
        try:
            self._land(job, row["bytes"], files)
        except (OSError, JobError) as e:
            return job, None, f"{type(e).__name__}: {e}"
        return job, row, None

    def _land(self, job: Job, size: int, files: dict[str, bytes]) -> None:
        """Put the job's files in the output folder (each atomically), or check that the
        workers' shared folder is this one; as a local job does, remove a reconstruction kept
        from an earlier bitstream when this job keeps none."""
        if self.shared_out is not None:
            path = self.out / job.bitstream
            if not path.is_file() or path.stat().st_size != size:
                raise JobError(
                    f"the worker wrote {job.bitstream} under {self.shared_out}, but {self.out} "
                    "does not have it: the workers' output folder must be this run's, as they "
                    "see it"
                )
            return
        for relative, data in files.items():
            _write_atomically(self.out / relative, data)
        rec = reconstruction_path(job.bitstream)
        if not job.keep_reconstruction and rec is not None:
            (self.out / rec).unlink(missing_ok=True)


def no_answer(address: str, seconds: float) -> str:
    """The error of an address where no Dask scheduler answered in time (one line)."""
    return (
        f"no Dask scheduler answered at {address} within {seconds:g}s "
        "(Dask's distributed.comm.timeouts.connect)"
    )


async def _identity(address: str, seconds: float) -> object:
    """What the server at `address` says it is, asked as Dask's rpc asks (the `identity` op)."""
    comm = await connect(address, timeout=seconds)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


def probe_scheduler(address: str, seconds: float) -> None:
    """Return once a Dask scheduler at `address` has said it is one, all within `seconds`;
    else ExecutorError (one line): no answer in time (nothing listens, the port is silent, the
    connection closes), or an answer that is not a scheduler's. What a service that speaks
    first sends is read as Dask's frame header, a length that can ask for exabytes: the
    MemoryError, like any other error of reading it, means not a scheduler."""
    try:
        answer = asyncio.run(asyncio.wait_for(_identity(address, seconds), seconds))
    except (OSError, TimeoutError):
        raise ExecutorError(no_answer(address, seconds)) from None
    except (Exception, MemoryError) as e:
        what = f"{type(e).__name__}: {e}".splitlines()[0][:200]
        raise ExecutorError(f"{address}: not a Dask scheduler ({what})") from None
    kind = answer.get("type") if isinstance(answer, dict) else None
    if kind != "Scheduler":
        said = f"a Dask {kind}" if isinstance(kind, str) else f"it answered {answer!r:.100}"
        raise ExecutorError(f"{address}: not a Dask scheduler ({said})")


def killed_worker_message(error: KilledWorker) -> str:
    """A job's failure when Dask gave up on it because its workers died (one line)."""
    worker = getattr(error.last_worker, "address", "?")
    deaths = error.allowed_failures + 1
    return (
        f"KilledWorker: the worker process running this job died {deaths} "
        f"time{'s' * (deaths != 1)}, the last {worker} (Dask's allowed-failures is "
        f"{error.allowed_failures}): the codec crashed its process or ran out of memory"
    )
