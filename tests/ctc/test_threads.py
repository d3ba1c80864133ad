"""Torch threads per job: explicit (`--threads`, default 1), the same in the run's process and
in its workers, recorded in the run record; `ctc complexity` measures on them too."""

from __future__ import annotations

import json
import os

import pytest
import torch
from ctc_testing import write_condition
from threads_codec import LOG, logged

from ctc import runner
from ctc.cli import main
from ctc.runner import THREAD_VARIABLES, run, threads_used
from ctc.store import Store

SPEC = "threads_codec:ThreadsCodec"


@pytest.fixture()
def condition(tmp_path):
    return write_condition(tmp_path, targets_bpp=[4.0], metrics={"psnr_rgb": {}})


@pytest.fixture()
def thread_log(tmp_path, monkeypatch):
    path = tmp_path / "threads.log"
    monkeypatch.setenv(LOG, str(path))
    return path


def _record(out) -> dict:
    with Store(out) as store:
        return store.runs()[-1]["record"]


def test_threads_used_sets_torch_and_the_variables_and_restores_them(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    with threads_used(3):
        assert torch.get_num_threads() == 3
        assert all(os.environ[v] == "3" for v in THREAD_VARIABLES)
    assert torch.get_num_threads() == before
    assert os.environ["OMP_NUM_THREADS"] == "7" and "MKL_NUM_THREADS" not in os.environ


def test_in_process_jobs_run_on_the_threads_asked_for(condition, crop_folder, thread_log, tmp_path):
    before = torch.get_num_threads()
    out = tmp_path / "out"
    summary = run(condition, codecs=[SPEC], dataset=crop_folder, out=out, threads=2, progress=False)
    assert summary.done == 3 and summary.threads == 2
    assert logged(thread_log) == {(os.getpid(), 2, "2")}
    assert torch.get_num_threads() == before  # the caller's setting is back
    record = _record(out)
    assert (record["jobs"], record["threads"]) == (1, 2)


def test_workers_run_on_one_thread_by_default(condition, crop_folder, thread_log, tmp_path):
    out = tmp_path / "out"
    summary = run(condition, codecs=[SPEC], dataset=crop_folder, out=out, jobs=2, progress=False,
                  memory=10**12)  # fmt: skip
    assert summary.done == 3 and summary.workers.workers == 2
    seen = logged(thread_log)
    assert {(threads, omp) for _, threads, omp in seen} == {(1, "1")}
    assert os.getpid() not in {pid for pid, _, _ in seen}
    record = _record(out)
    assert (record["jobs"], record["threads"]) == (2, 1)
    assert record["worker_plan"]["requested"] == 2


def test_run_refuses_a_thread_count_out_of_range(condition):
    for threads in (0, runner.MAX_THREADS + 1):
        with pytest.raises(ValueError, match="threads must be 1 to"):
            run(condition, codecs=["jpeg"], threads=threads)


def test_run_says_its_workers_and_threads(condition, crop_folder, tmp_path, capsys):
    args = ["run", str(condition), "--codec", "jpeg", "--dataset", str(crop_folder),
            "--out", str(tmp_path / "out"), "--no-progress", "--threads", "2"]  # fmt: skip
    assert main(args) == 0
    err = capsys.readouterr().err
    assert err.rstrip().endswith("; 1 worker, 2 torch threads each")
    assert ("more than this machine's" in err) == ((os.cpu_count() or 1) < 2)


def test_more_threads_than_cpus_is_a_warning(condition, crop_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    args = ["run", str(condition), "--codec", "jpeg", "--dataset", str(crop_folder),
            "--out", str(tmp_path / "out"), "--no-progress", "--threads", "2"]  # fmt: skip
    assert main(args) == 0
    assert (
        "ctc: warning: -j 1 x --threads 2 asks for more than this machine's 1 CPUs"
        in capsys.readouterr().err
    )


def test_complexity_measures_on_the_threads_asked_for(capsys):
    before = torch.get_num_threads()
    args = ["complexity", "jpeg", "--size", "64x48", "--repeat", "1", "--json", "--no-cache"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["platform"]["torch_threads"] == 1
    assert main([*args, "--threads", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["platform"]["torch_threads"] == 2
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "quick", "--threads", "0"], "argument --threads: expected at least 1, got 0"),
        (["run", "quick", "--threads", "2000"], "argument --threads: expected at most 1024"),
        (["complexity", "jpeg", "--threads", "x"], "expected a whole number, got 'x'"),
        (["report", "x", "--threads", "-1"], "expected at least 1, got -1"),
        (["run", "quick", "--memory", "0"], "argument --memory: expected GB above 0"),
        (["run", "quick", "--memory", "nan"], "argument --memory: expected a finite number"),
    ],
)
def test_bad_threads_and_memory_are_one_line_usage_errors(args, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(args)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err.splitlines()[-1]


def test_measurements_in_python_run_and_are_cached_on_the_same_threads(crops):
    """From Python as from the command line: 1 thread unless a threads_used block says
    otherwise, the same in the measurement's platform and in its cache key."""
    from anchors.jpeg import JpegCodec
    from ctc.complexity import measure
    from ctc.complexity_cache import machine

    before = torch.get_num_threads()
    picture = crops["astro"]
    assert measure(JpegCodec(), picture, repeat=1)["platform"]["torch_threads"] == 1
    assert machine()["torch_threads"] == 1
    with threads_used(2):
        assert measure(JpegCodec(), picture, repeat=1)["platform"]["torch_threads"] == 2
        assert machine()["torch_threads"] == 2
    assert torch.get_num_threads() == before
