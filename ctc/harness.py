"""What the harness itself is: its nic-ctc version and a hash of its own source.

Two processes with the same codec but different harness code (a Dask worker installed from
another checkout) can give different rows for the same job: the version alone does not tell a
working tree's edits apart, so a run also records, and a Dask worker checks against its own, the
SHA-256 of the `ctc` package's Python source.
"""

from __future__ import annotations

import functools
import hashlib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


@functools.cache
def ctc_version() -> str:
    """The installed nic-ctc version, "0+unknown" where the package is not installed."""
    try:
        return version("nic-ctc")
    except PackageNotFoundError:
        return "0+unknown"


@functools.cache
def source_sha256() -> str:
    """SHA-256 over the `ctc` package's .py files (each file's path relative to the package,
    then its bytes, in path order): computed once per process, which reads them all."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if "__pycache__" in relative:
            continue
        data = path.read_bytes()
        digest.update(f"{relative}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def identity() -> tuple[str, str]:
    """(nic-ctc version, source SHA-256) of this process's harness."""
    return ctc_version(), source_sha256()
