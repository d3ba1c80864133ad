"""A real codec for the thread tests: QuantZlibCodec that appends, at every encode, its process
id, torch's thread count and OMP_NUM_THREADS to the file named by $CTC_TEST_THREADS_LOG."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from ctc_testing import QuantZlibCodec

LOG = "CTC_TEST_THREADS_LOG"


class ThreadsCodec(QuantZlibCodec):
    """QuantZlibCodec that says which threads its encodes ran on."""

    name = "threads"

    def encode(self, image: np.ndarray, knob_value: float) -> bytes:
        import torch

        with open(os.environ[LOG], "a", encoding="utf-8") as log:
            log.write(
                f"{os.getpid()} {torch.get_num_threads()} {os.environ.get('OMP_NUM_THREADS')}\n"
            )
        return super().encode(image, knob_value)


def logged(path: os.PathLike) -> set[tuple[int, int, str]]:
    """The (process id, torch threads, OMP_NUM_THREADS) the encodes logged."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return {(int(p), int(t), omp) for p, t, omp in (line.split() for line in lines)}
