"""Where a run's jobs run: the executor interface, and the `--scheduler` address that picks one.

An executor takes the jobs left to do and yields one outcome per job as it finishes, in any
order: `(job, row, None)` when the job's bitstream (and kept reconstruction) is in the output
folder, or `(job, None, message)` when it failed for good, after the run's retries. The runner
writes every outcome to the store itself, so an executor never touches it, and the store's
resume rules are the same whichever executor ran the jobs.

- the local process pool (`ctc.runner.LocalPool`), the embedded default: `-j N` spawned worker
  processes on this machine, or the run's own process for one;
- a Dask distributed cluster (`ctc.executors.dask_cluster.DaskExecutor`): `tcp://HOST:PORT`
  connects to a running scheduler, `local:N` starts a `LocalCluster` of N workers here.

An executor is a context manager: entering it connects to its workers (or starts them), so a
cluster that cannot be reached stops the run before anything is recorded; leaving it lets them
go. This module imports no Dask: parsing an address costs nothing, and a run without a
scheduler never imports it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ctc.job import Job

Outcome = tuple["Job", dict[str, Any] | None, str | None]
"""One finished job: (job, its row, None) or (job, None, why it failed)."""

MAX_LOCAL_WORKERS = 1024
"""The most workers `local:N` starts (a larger count is a typing error)."""


class ExecutorError(RuntimeError):
    """The executor cannot run the jobs: no scheduler at the address, or the connection to it
    was lost mid-run. The message is one line."""


class Executor(Protocol):
    """Runs jobs and yields their outcomes as they finish (module docstring)."""

    workers: int
    """How many workers run the jobs (for a cluster: those connected when the run started)."""

    def __enter__(self) -> Executor: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None: ...

    def run(self, todo: Sequence[Job]) -> Iterator[Outcome]:
        """Run every job of `todo`; yield one outcome per job. Closing the iterator early
        (Ctrl-C, an error in the caller) stops the jobs still running."""
        ...


@dataclass(frozen=True)
class Scheduler:
    """A `--scheduler` address: a Dask scheduler to connect to (`address`, tcp://HOST:PORT) or
    a LocalCluster of `local_workers` workers to start here."""

    address: str | None = None
    local_workers: int | None = None

    def __str__(self) -> str:
        return self.address or f"local:{self.local_workers}"


_TCP = re.compile(r"tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?P<port>[0-9]{1,5})")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
"""One label of a host name: 1 to 63 letters, digits and hyphens, no hyphen at either end."""
MAX_HOSTNAME = 253
"""The longest host name (RFC 1035): a longer one is no host."""


def _host_problem(host: str) -> str | None:
    """Why `host` (as _TCP matched it) is no host to connect to, None where it is one: an IPv6
    literal in brackets, an IPv4 address, or a host name of valid labels. The resolver would
    otherwise fail on it with an encoding error, or wait on a name that cannot exist."""
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return f"{host!r} is not an IPv6 address"
        return None
    if re.fullmatch(r"[0-9.]+", host):  # all digits and dots: an IPv4 address or nothing
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"{host!r} is not an IPv4 address"
        return None
    name = host.removesuffix(".")  # a fully qualified name may end in a dot
    if len(name) > MAX_HOSTNAME or not all(_LABEL.fullmatch(p) for p in name.split(".")):
        return (
            f"{host!r} is not a host name (labels of 1 to 63 letters, digits or hyphens, "
            f"not starting or ending with a hyphen, at most {MAX_HOSTNAME} characters)"
        )
    return None


def parse_scheduler(text: str) -> Scheduler:
    """The Scheduler of `tcp://HOST:PORT` or `local:N`; ValueError (one line) for anything
    else, before any connection is tried. N and PORT are ASCII digits (`str.isdigit` would take
    other scripts' digits too)."""
    if text.startswith("local:"):
        count = text.removeprefix("local:")
        if not re.fullmatch(r"[0-9]{1,5}", count) or not 1 <= int(count) <= MAX_LOCAL_WORKERS:
            raise ValueError(
                f"local:N takes a number of workers from 1 to {MAX_LOCAL_WORKERS}, got {text!r}"
            )
        return Scheduler(local_workers=int(count))
    match = _TCP.fullmatch(text)
    if match is None:
        raise ValueError(f"expected tcp://HOST:PORT or local:N, got {text!r}")
    if not 1 <= int(match["port"]) <= 65535:
        raise ValueError(f"port must be 1 to 65535, got {text!r}")
    problem = _host_problem(match["host"])
    if problem is not None:
        raise ValueError(f"{problem}, in {text!r}")
    return Scheduler(address=text)
