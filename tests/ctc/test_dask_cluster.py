"""`ctc run --scheduler tcp://HOST:PORT` against a real Dask cluster on loopback: a scheduler and
two workers started as processes (`python -m distributed.cli.dask_scheduler` / `dask_worker`).
A worker killed mid-run loses no result and every job is stored once; a killed client resumes
like a local run; workers that write to a shared output folder; always the local run's rows and
bitstream bytes."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from ctc_testing import write_condition

from ctc import harness
from ctc.runner import run
from ctc.store import KEY, Store

CODEC = '''
import os
import time

from anchors.jpeg import JpegCodec


class SlowJpeg(JpegCodec):
    """JPEG whose encodes sleep $DASK_TEST_DELAY seconds where that is set (on the test's
    workers only): jobs are still running when a test kills a worker or the client."""

    def encode(self, image, knob_value):
        time.sleep(float(os.environ.get("DASK_TEST_DELAY", "0")))
        return super().encode(image, knob_value)
'''
SPEC = "dask_slow_codec:SlowJpeg"
TARGETS = [0.5, 1.0, 1.5]  # 9 jobs on the 3 crops, about half a second each on a worker
VOLATILE = {"encode_seconds", "decode_seconds", "rate_control_seconds", "run_id", "finished_at"}


@dataclass
class Cluster:
    address: str
    workers: list[subprocess.Popen]
    codecs: Path  # the folder of the test codec's module


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


@contextmanager
def started_cluster(folder: Path, trim_first: bool = False) -> Iterator[Cluster]:
    """A scheduler and two one-thread workers without nannies (a killed worker stays dead) on
    loopback; the workers see the test codec and sleep in its encodes; `trim_first`: the first
    has the malloc setting that Dask's nannies give their workers. All killed after."""
    codecs = folder / "codecs"
    codecs.mkdir(parents=True)
    (codecs / "dask_slow_codec.py").write_text(CODEC)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(codecs), os.environ.get("PYTHONPATH", "")]),
        "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0",  # as docs/cluster.md says
    }
    file = folder / "scheduler.json"
    started: list[subprocess.Popen] = []

    def start(module: str, *args: str, **extra: str) -> subprocess.Popen:
        with open(folder / f"{module}-{len(started)}.log", "w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", f"distributed.cli.{module}", *args, "--no-dashboard"],
                env={**env, **extra}, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        started.append(proc)
        return proc

    try:
        start("dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file", str(file))
        _wait(lambda: file.is_file() and file.stat().st_size, 60, "the scheduler did not start")
        address = json.loads(file.read_text())["address"]
        trim = [{"MALLOC_TRIM_THRESHOLD_": "65536"} if trim_first else {}, {}]
        workers = [
            start("dask_worker", address, "--nthreads", "1", "--no-nanny", "--name", f"w{i}",
                  DASK_TEST_DELAY="0.1", **trim[i])
            for i in range(2)
        ]  # fmt: skip
        logs = [folder / f"dask_worker-{i}.log" for i in (1, 2)]
        _wait(lambda: all("Registered to" in log.read_text() for log in logs), 60, "no workers")
        yield Cluster(address, workers, codecs)
    finally:
        for proc in started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """A cluster the tests of this module share (those that kill no worker)."""
    with started_cluster(tmp_path_factory.mktemp("cluster"), trim_first=True) as started:
        yield started


@pytest.fixture()
def codec_path(monkeypatch):
    """The test codec importable here too, for the local runs to compare with."""

    def add(cluster: Cluster) -> None:
        monkeypatch.syspath_prepend(str(cluster.codecs))

    return add


def ctc_run(condition: Path, crops: Path, out: Path, cluster: Cluster, *more: str) -> list[str]:
    """The command line of a run of the test codec on `cluster`."""
    return [
        sys.executable, "-m", "ctc.cli", "run", str(condition), "--codec", SPEC,
        "--dataset", str(crops), "--out", str(out), "--no-progress",
        "--scheduler", cluster.address, *more,
    ]  # fmt: skip


def environment(cluster: Cluster) -> dict[str, str]:
    """The client's environment: the test codec on its path (never the workers' delay)."""
    path = os.pathsep.join([str(cluster.codecs), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


def count_rows(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute("SELECT count(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # no store or no table yet
        return 0


def stored(out: Path) -> dict[tuple, dict]:
    """The store's rows by key."""
    with Store(out) as store:
        return {tuple(r[k] for k in KEY): r for r in store.results()}


def assert_same_as_a_local_run(out: Path, condition: Path, crops: Path, tmp_path: Path) -> None:
    """The rows of `out` are those of a local run, but for times and run ids, and so are the
    bytes of every bitstream."""
    local = run(condition, codecs=[SPEC], dataset=crops, out=tmp_path / "local", progress=False)
    rows = stored(out)
    assert len(rows) == local.total == len(local.rows)
    for row in local.rows:
        mine = rows[tuple(row[k] for k in KEY)]
        assert {k: v for k, v in mine.items() if k not in VOLATILE} == {
            k: v for k, v in row.items() if k not in VOLATILE
        }
        local_bytes = (tmp_path / "local" / row["bitstream"]).read_bytes()
        assert (out / mine["bitstream"]).read_bytes() == local_bytes


def test_a_worker_killed_mid_run_loses_no_result(tmp_path, crop_folder, codec_path):
    with started_cluster(tmp_path / "cluster") as cluster:
        codec_path(cluster)
        condition = write_condition(tmp_path, targets_bpp=TARGETS, metrics={"psnr_rgb": {}})
        out = tmp_path / "out"
        client = subprocess.Popen(
            ctc_run(condition, crop_folder, out, cluster), env=environment(cluster),
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        _wait(lambda: count_rows(out / "results.sqlite") >= 2, 120, "no rows")
        os.killpg(cluster.workers[0].pid, signal.SIGKILL)  # with the job it was running
        at_kill = count_rows(out / "results.sqlite")
        _, err = client.communicate(timeout=180)
        assert cluster.workers[0].wait() == -signal.SIGKILL
    assert client.returncode == 0, err
    assert at_kill < 9, "the worker must be killed mid-run"
    assert "ctc: test: 9 jobs, 0 already done, 0 from frozen anchor results, 9 done now, " in err
    with Store(out) as store:
        assert [r["status"] for r in store.runs()] == ["finished"] and store.failures() == []
        record = store.runs()[0]["record"]
        assert record["scheduler"] == cluster.address and record["retries"] == 0
        assert record["ctc_source_sha256"] == harness.source_sha256()
    assert_same_as_a_local_run(out, condition, crop_folder, tmp_path)  # each job once


def test_a_killed_client_resumes_like_a_local_run(tmp_path, crop_folder, cluster, codec_path):
    codec_path(cluster)
    condition = write_condition(tmp_path, targets_bpp=TARGETS, metrics={"psnr_rgb": {}})
    out = tmp_path / "out"
    cmd = ctc_run(condition, crop_folder, out, cluster)
    client = subprocess.Popen(cmd, env=environment(cluster), start_new_session=True)
    _wait(lambda: count_rows(out / "results.sqlite") >= 3, 120, "no rows")
    os.killpg(client.pid, signal.SIGKILL)  # the client alone: the cluster goes on
    client.wait()
    before = stored(out)
    assert 0 < len(before) < 9, "the client must be killed mid-run"

    again = subprocess.run(cmd, env=environment(cluster), capture_output=True, text=True,
                           timeout=180)  # fmt: skip
    assert again.returncode == 0, again.stderr
    expected = f"9 jobs, {len(before)} already done, 0 from frozen anchor results, "
    assert expected + f"{9 - len(before)} done now, 0 failed" in again.stderr
    after = stored(out)
    for key, row in before.items():  # untouched
        assert (after[key]["run_id"], after[key]["finished_at"]) == (1, row["finished_at"])
    with Store(out) as store:
        assert [r["status"] for r in store.runs()] == ["killed", "finished"]
    assert_same_as_a_local_run(out, condition, crop_folder, tmp_path)


def test_workers_write_to_a_shared_output_folder(tmp_path, crop_folder, cluster, codec_path):
    codec_path(cluster)
    condition = write_condition(tmp_path, targets_bpp=[1.0], metrics={"psnr_rgb": {}})
    out = tmp_path / "out"
    common = dict(codecs=[SPEC], dataset=crop_folder, progress=False, scheduler=cluster.address)
    summary = run(condition, out=out, worker_out=str(out), **common)
    assert (summary.done, summary.failures) == (3, [])
    assert_same_as_a_local_run(out, condition, crop_folder, tmp_path)

    assert [p.name for p in out.iterdir() if p.name.startswith(".ctc-worker-out-")] == []


@pytest.mark.parametrize("exists", [True, False])
def test_a_worker_out_that_is_not_the_run_folder_stops_before_any_job(
    tmp_path, crop_folder, cluster, exists
):
    condition = write_condition(tmp_path, targets_bpp=[1.0], metrics={"psnr_rgb": {}})
    elsewhere = tmp_path / "elsewhere"  # not the run's folder: another run's, or none at all
    if exists:
        (elsewhere / "bitstreams").mkdir(parents=True)
        (elsewhere / "bitstreams" / "kept.bin").write_bytes(b"another run's")
    out = tmp_path / "out"
    cmd = ctc_run(condition, crop_folder, out, cluster, "--worker-out", str(elsewhere))
    proc = subprocess.run(cmd, env=environment(cluster), capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"ctc: error: --worker-out {elsewhere} is not this run's output folder {out} as 2 of "
        f"the 2 Dask workers see it (first {proc.stderr.split('(first ')[1].split(')')[0]}): "
        "give the path under which they see this folder"
    ]
    if exists:  # untouched
        assert sorted(p.name for p in elsewhere.rglob("*")) == ["bitstreams", "kept.bin"]
    else:  # not created
        assert not elsewhere.exists()
    assert [p.name for p in out.iterdir() if p.name.startswith(".ctc-worker-out-")] == []
    assert not (out / "bitstreams").exists()
    with Store(out) as store:
        assert store.runs() == []


def test_a_worker_refuses_a_job_from_another_harness(tmp_path, crop_folder):
    """A job carries the client's harness identity; a worker whose own differs refuses it,
    naming both, before it runs anything."""
    from ctc.executors.dask_job import run_job
    from ctc.harness import identity
    from ctc.job import JobError

    version, source = identity()
    with pytest.raises(JobError) as refused:
        run_job(None, 1, None, (version, "0" * 64))  # refused before the job is looked at
    assert str(refused.value) == (
        f"harness nic-ctc {version} (source sha256 {source[:12]}) on this worker, nic-ctc "
        f"{version} (source sha256 000000000000) in the run: install the same ctc on every "
        "worker"
    )


def test_workers_that_would_slow_the_jobs_down_are_named(tmp_path, crop_folder, cluster):
    condition = write_condition(tmp_path, targets_bpp=[1.0], metrics={"psnr_rgb": {}})
    plans = []
    summary = run(
        condition, codecs=["jpeg"], dataset=crop_folder, out=tmp_path / "out", progress=False,
        scheduler=cluster.address, on_plan=plans.append,
    )  # fmt: skip
    assert summary.done == 3 and summary.workers.workers == 2
    (plan,) = plans
    assert plan.note == (
        "1 of the 2 Dask workers run with MALLOC_TRIM_THRESHOLD_=65536 (Dask's nanny sets it), "
        "which doubled a job's time in tests and so its EncT and DecT: start them without it "
        "(docs/cluster.md)"
    )
    with Store(tmp_path / "out") as store:
        assert store.runs()[0]["record"]["worker_plan"]["note"] == plan.note
