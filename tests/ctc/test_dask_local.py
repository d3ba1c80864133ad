"""`ctc run --scheduler local:N`: a real Dask LocalCluster started by the run. The same rows and
bitstream bytes as the local pool, progress while the jobs run, retries of jobs that raise, and
a job that kills its worker recorded as failed with KilledWorker while the run goes on."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import dask
import pytest
from ctc_testing import children, running, write_condition

from ctc.runner import run
from ctc.store import Store

CODECS = '''
import hashlib
import os
import time
from pathlib import Path

from anchors.jpeg import JpegCodec


def _id(image):
    return hashlib.sha256(image.tobytes()).hexdigest()[:8]


def _attempt(image, what):
    """Log one encode attempt of `what` on `image` in $DASK_TEST_LOG."""
    with open(os.environ["DASK_TEST_LOG"], "a") as log:
        malloc = os.environ.get("MALLOC_TRIM_THRESHOLD_")
        log.write(f"{what} {_id(image)} {os.getpid()} {malloc}\\n")


class Flaky(JpegCodec):
    """JPEG whose first encode of each image raises (in whichever process runs it)."""

    def encode(self, image, knob_value):
        if not any(line.startswith(f"flaky {_id(image)} ")
                   for line in Path(os.environ["DASK_TEST_LOG"]).read_text().splitlines()):
            _attempt(image, "flaky")
            raise RuntimeError("the first try fails")
        return super().encode(image, knob_value)


class Failing(JpegCodec):
    """JPEG that always raises."""

    def encode(self, image, knob_value):
        _attempt(image, "failing")
        raise RuntimeError("this codec always fails")


class Slow(JpegCodec):
    """JPEG whose encodes sleep 0.3 s: jobs still running when the test stops the run."""

    def encode(self, image, knob_value):
        time.sleep(0.3)
        return super().encode(image, knob_value)


class Crashing(JpegCodec):
    """JPEG that ends its process on one image (51 rows: the cat crop), as a segfault would."""

    def encode(self, image, knob_value):
        if image.shape[0] == 51:
            os._exit(3)
        return super().encode(image, knob_value)
'''

VOLATILE = {"encode_seconds", "decode_seconds", "rate_control_seconds", "run_id", "finished_at"}


def same_rows(a: list[dict], b: list[dict]) -> bool:
    """Whether two runs' rows are the same but for their times and run ids."""
    keep = [{k: v for k, v in r.items() if k not in VOLATILE} for r in a]
    return keep == [{k: v for k, v in r.items() if k not in VOLATILE} for r in b]


@pytest.fixture()
def codecs(tmp_path, monkeypatch) -> Path:
    """The test codecs' module in a folder on the path of this process and of the workers it
    starts, with an empty attempt log."""
    folder = tmp_path / "codecs"
    folder.mkdir()
    (folder / "dask_test_codecs.py").write_text(CODECS)
    (tmp_path / "attempts.log").write_text("")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])
    )
    monkeypatch.setenv("DASK_TEST_LOG", str(tmp_path / "attempts.log"))
    return tmp_path / "attempts.log"


def test_local_cluster_gives_the_local_rows_with_progress(tmp_path, crop_folder):
    condition = write_condition(tmp_path, targets_bpp=[0.5, 1.0], metrics={"psnr_rgb": {}})
    common = ["--codec", "jpeg", "--dataset", str(crop_folder)]
    out = tmp_path / "dask"
    proc = subprocess.run(
        [sys.executable, "-m", "ctc.cli", "run", str(condition), *common, "--out", str(out),
         "--scheduler", "local:2"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("ctc test:   0%|") and lines[-2].startswith("ctc test: 100%|")
    assert lines[-1].startswith("ctc: test: 6 jobs, 0 already done, 0 from frozen anchor ")
    assert lines[-1].endswith("6 done now, 0 failed; results in " + str(out) + "; 2 workers, "
                              "1 torch thread each (Dask, local:2)")  # fmt: skip
    local = run(condition, codecs=["jpeg"], dataset=crop_folder, out=tmp_path / "local")
    with Store(out) as store:
        rows = store.results()
        (record,) = [r["record"] for r in store.runs()]
    assert same_rows(rows, local.rows) and len(rows) == 6
    for r in rows:
        assert (out / r["bitstream"]).read_bytes() == (
            tmp_path / "local" / r["bitstream"]
        ).read_bytes()
    assert (record["scheduler"], record["jobs"], record["retries"]) == ("local:2", 2, 0)


def test_jobs_that_raise_are_retried_then_recorded_as_failed(tmp_path, crop_folder, codecs):
    condition = write_condition(tmp_path, targets_bpp=[1.0], metrics={"psnr_rgb": {}})
    summary = run(
        condition, codecs=["dask_test_codecs:Flaky", "dask_test_codecs:Failing"],
        dataset=crop_folder, out=tmp_path / "out", progress=False, scheduler="local:2", retries=1,
    )  # fmt: skip
    assert summary.done == 3  # each Flaky job failed once, then passed on its retry
    assert sorted(key[2] for key, _ in summary.failures) == ["astro", "cat", "coffee"]
    assert {key[0] for key, _ in summary.failures} == {"dask_test_codecs:Failing"}
    assert {m for _, m in summary.failures} == {"RuntimeError: this codec always fails"}
    attempts = [line.split() for line in codecs.read_text().splitlines()]
    assert sorted(what for what, *_ in attempts) == ["failing"] * 6 + ["flaky"] * 3  # 2 tries each
    assert {malloc for *_, malloc in attempts} == {"None"}  # as in a local process (dask_job.py)
    with Store(tmp_path / "out") as store:
        assert len(store.failures()) == 3 and store.runs()[0]["status"] == "failed"


def test_a_job_that_kills_its_worker_fails_with_killed_worker(tmp_path, crop_folder, codecs):
    condition = write_condition(tmp_path, targets_bpp=[1.0], metrics={"psnr_rgb": {}})
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        summary = run(
            condition, codecs=["dask_test_codecs:Crashing"], dataset=crop_folder,
            out=tmp_path / "out", progress=False, scheduler="local:1",
        )  # fmt: skip
    assert summary.done == 2  # astro and coffee, on the worker restarted after each crash
    ((key, message),) = summary.failures
    assert key[2] == "cat"
    assert message.startswith("KilledWorker: the worker process running this job died 2 times, ")
    assert "Dask's allowed-failures is 1" in message and "\n" not in message
    with Store(tmp_path / "out") as store:
        (failure,) = store.failures()
    assert failure["image"] == "cat" and failure["message"] == message


def _default_sigint() -> None:
    """In the child: SIGINT's default action, as a run started from a terminal has it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop_a_local_cluster_run(tmp_path, crop_folder, send, **popen) -> tuple[int, str]:
    """Start `ctc run ... --scheduler local:2` in a session of its own, wait for its first row,
    `send(proc)` a signal, and check that the cluster's workers are gone and the run is recorded
    as interrupted with the rows so far; (exit status, stderr) of the run."""
    condition = write_condition(tmp_path, targets_bpp=[0.5, 1.0, 2.0], metrics={"psnr_rgb": {}})
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ctc.cli", "run", str(condition), "--codec", "dask_test_codecs:Slow",
         "--dataset", str(crop_folder), "--out", str(out), "--no-progress",
         "--scheduler", "local:2"],
        start_new_session=True, stderr=subprocess.PIPE, text=True, **popen,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while sqlite3_rows(out) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = children(proc.pid)
    assert proc.poll() is None and len(workers) >= 2, "the run must be stopped mid-way"
    send(proc)
    _, err = proc.communicate(timeout=60)
    time.sleep(0.5)
    assert not [pid for pid in workers if running(pid)]
    with Store(out) as store:
        assert [r["status"] for r in store.runs()] == ["interrupted"]
        assert 1 <= len(store.results()) < 9 and store.failures() == []
    return proc.returncode, err


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_ctrl_c_ends_a_local_cluster_run_in_one_line(tmp_path, crop_folder, codecs):
    def ctrl_c(proc: subprocess.Popen) -> None:  # as a terminal sends it: the workers see none
        os.killpg(proc.pid, signal.SIGINT)

    code, err = stop_a_local_cluster_run(tmp_path, crop_folder, ctrl_c, preexec_fn=_default_sigint)
    assert code == 130 and err == "ctc: error: interrupted\n"  # no worker traceback


def sqlite3_rows(out: Path) -> int:
    try:
        with sqlite3.connect(out / "results.sqlite", timeout=1) as con:
            return con.execute("SELECT count(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # no store or no table yet
        return 0


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_sigterm_ends_a_local_cluster_run_like_ctrl_c(tmp_path, crop_folder, codecs):
    """SIGTERM to the client alone (what Slurm sends at a time limit): one line, exit 143, the
    run recorded as interrupted, the LocalCluster's workers closed."""

    def sigterm(proc: subprocess.Popen) -> None:
        os.kill(proc.pid, signal.SIGTERM)

    code, err = stop_a_local_cluster_run(tmp_path, crop_folder, sigterm)
    assert code == 143 and err == "ctc: error: terminated\n"
