"""Reading and writing the files nic is given: regular files only, bounded, written atomically.

Bitstreams and model files are read through read_file, and what `nic encode` and `nic decode`
write (bitstreams, decoded images) through atomic_output, so that a FIFO cannot block nic, a
device or an enormous file cannot exhaust its memory, and a failed write leaves no partial file.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class FileError(ValueError):
    """A file that is missing, not a regular file, too large, unreadable or unwritable; the
    message is one line."""


def read_file(path: str | Path, max_bytes: int, what: str) -> bytes:
    """The whole of `path`, read once; `what` names it in errors ("bitstream", "model file").

    Only a regular file of at most max_bytes is read (checked on the open descriptor, opened
    without blocking, so a FIFO is refused at once). A file whose size the kernel does not know
    (a /proc file says 0) is refused when it turns out larger than it said. Raises FileError.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileError(f"{what} not found: {path}") from None
    except OSError as e:
        raise FileError(f"{path}: cannot open the {what} ({e.strerror})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise FileError(f"{path}: not a {what} (not a regular file)")
    with open(fd, "rb", buffering=0) as f:
        if info.st_size > max_bytes:
            raise FileError(
                f"{path}: {info.st_size:,} bytes, more than a {what} may have ({max_bytes:,})"
            )
        try:
            data = f.read(info.st_size + 1)
        except OSError as e:
            raise FileError(f"{path}: cannot read the {what} ({e.strerror})") from None
    if len(data) != info.st_size:
        raise FileError(f"{path}: not a {what} (its size is not what the file system says)")
    return data


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path`, with the same suffix, renamed onto `path` when the block
    ends without an error and removed otherwise: `path` is never left half written.

    A link is followed (its target is replaced); an existing target that is not a regular file
    (a device, a FIFO, a folder) raises FileError instead of being replaced.
    """
    path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file():
        raise FileError(f"{path}: exists and is not a regular file; not replaced")
    if not path.parent.is_dir():
        raise FileError(f"{path}: cannot be written, its folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def torch_load_reason(error: Exception) -> str:
    """One line on why torch.load refused or failed to read a file (its messages span several
    lines, and suggest loading the file unsafely, which nic never does)."""
    if isinstance(error, (IndexError, KeyError, EOFError, UnicodeDecodeError, OverflowError)):
        return "not a file torch.save wrote"  # torch's parser tripping over other bytes
    text = str(error)
    unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if unsafe:
        return f"it holds {unsafe.group(1)}, not only tensors and plain values"
    detail = text.partition("WeightsUnpickler error:")[2] or text
    line = next((ln.strip() for ln in detail.splitlines() if ln.strip()), "")
    return line[:160] or type(error).__name__
