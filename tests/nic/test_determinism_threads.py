"""Decoded pixels do not depend on torch's thread count (docs/codec.md, "Determinism").

The picture and rate position are one where the synthesis on torch's own thread count
(nic.codec.SYNTHESIS_THREADS = None) decodes 3 of 73,728 values one level apart on 1 and on 3
threads (torch 2.13, AVX-512 CPU): GDN's 1x1 convolution takes another kernel on one thread than
on several, and oneDNN's transposed convolutions round differently on 3 threads than on 2. The
pytest process decodes on its own thread count too.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from nic import codec, zoo
from nic.models import MeanScaleHyperprior

RATE = 5

DECODE = """
import hashlib, sys
import torch
from nic import codec
threads = int(sys.argv[2])
torch.set_num_threads(threads)
stream = open(sys.argv[1], "rb").read()
first, second = codec.decode(stream), codec.decode(stream)
assert (first == second).all(), "two decodes in one process differ"
assert torch.get_num_threads() == threads, torch.get_num_threads()
print(hashlib.sha256(first.tobytes()).hexdigest())
"""


def _sha(pixels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def stream(astronaut) -> bytes:
    """A 192 x 128 crop of the astronaut (the face and the flag) with the default zoo model."""
    return codec.encode(np.ascontiguousarray(astronaut[:128, 128:320]), zoo.load(), RATE)


def test_decoded_pixels_do_not_depend_on_the_thread_count(stream, tmp_path):
    path = tmp_path / "crop.nic"
    path.write_bytes(stream)
    workers = {
        threads: subprocess.Popen(
            [sys.executable, "-c", DECODE, str(path), str(threads)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for threads in (1, 3)
    }
    hashes = {}
    for threads, worker in workers.items():
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        hashes[threads] = out.split()[-1]
    assert hashes == dict.fromkeys(hashes, _sha(codec.decode(stream)))


def test_repeated_decodes_give_the_same_pixels(stream):
    assert _sha(codec.decode(stream)) == _sha(codec.decode(stream))


def test_the_synthesis_runs_on_the_fixed_thread_count_and_torchs_count_is_restored(
    stream, monkeypatch
):
    seen = []
    synthesize = MeanScaleHyperprior.synthesize

    def recording(self, y_hat, rate):
        seen.append(torch.get_num_threads())
        return synthesize(self, y_hat, rate)

    monkeypatch.setattr(MeanScaleHyperprior, "synthesize", recording)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        codec.decode(stream)
        assert seen == [codec.SYNTHESIS_THREADS] and torch.get_num_threads() == 3

        def failing(self, y_hat, rate):
            raise RuntimeError("out of memory")

        monkeypatch.setattr(MeanScaleHyperprior, "synthesize", failing)
        with pytest.raises(RuntimeError):
            codec.decode(stream)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(threads)
