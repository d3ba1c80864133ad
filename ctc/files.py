"""Reading the harness's own small files (conditions, dataset manifests, complexity
measurements) without trusting them: only a regular file of bounded size is read, opened without
blocking, so a FIFO, a device or a huge file is refused at once instead of waited on or loaded.
(nic has its own reader for bitstreams and model files; ctc imports no codec package.)"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class NotASmallFileError(ValueError):
    """The path is not a regular file of at most the size allowed; the message says which."""


def read_small_file(path: str | Path, max_bytes: int) -> bytes:
    """The whole of `path` if it is a regular file of at most max_bytes (checked on the open
    descriptor and again on what was read). Raises OSError (FileNotFoundError among them) when
    it cannot be opened or read, NotASmallFileError otherwise."""
    refusal = f"{path}: not a regular file of at most {max_bytes >> 20} MiB"
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
        os.close(fd)  # checked before wrapping: open() refuses a directory's descriptor itself
        raise NotASmallFileError(refusal)
    with open(fd, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew after the check, or a size the kernel does not know
        raise NotASmallFileError(refusal)
    return data
