"""A real `ctc run` killed with SIGKILL mid-run, then restarted: nothing finished is lost or
redone, and the rest is done. Killed or interrupted, a run leaves no worker behind."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ctc_testing import children, running, write_condition
from PIL import Image
from skimage import data as skdata

from ctc.store import KEY

TARGETS = [0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0, 2.5]


def count_rows(db) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute("SELECT count(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


def finished_rows(db) -> dict:
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        rows = con.execute(f"SELECT {', '.join(KEY)}, run_id, finished_at FROM results")
        return {tuple(r[k] for k in KEY): (r["run_id"], r["finished_at"]) for r in rows}


def test_sigkill_then_restart_loses_nothing(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    photo = skdata.astronaut()
    for i in range(4):
        Image.fromarray(np.ascontiguousarray(photo[i * 96 : i * 96 + 96, 100:228])).save(
            images / f"crop{i}.png"
        )
    condition = write_condition(
        tmp_path,
        targets_bpp=TARGETS,
        metrics={"psnr_rgb": {}, "msssim_rgb": {}, "vmaf": {}},
    )
    out = tmp_path / "out"
    db = out / "results.sqlite"
    total = 4 * len(TARGETS)
    cmd = [
        sys.executable, "-m", "ctc.cli", "run", str(condition), "--codec", "jpeg",
        "--dataset", str(images), "-j", "2", "--out", str(out), "--no-progress",
    ]  # fmt: skip

    proc = subprocess.Popen(cmd, start_new_session=True, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while count_rows(db) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its workers, as an OOM kill or power cut
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = finished_rows(db)
    assert 0 < len(before) < total, "the run must be killed mid-way"

    restart = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert restart.returncode == 0, restart.stderr
    expected = f"{total} jobs, {len(before)} already done, 0 from frozen anchor results, "
    assert expected + f"{total - len(before)} done now" in restart.stderr
    after = finished_rows(db)
    assert len(after) == total
    assert all(after[key] == value for key, value in before.items())  # untouched
    assert {run_id for run_id, _ in after.values()} == {1, 2}
    with sqlite3.connect(db) as con:
        statuses = [s for (s,) in con.execute("SELECT status FROM runs ORDER BY id")]
    assert statuses == ["killed", "finished"]


def wait_until_gone(pids: list[int], seconds: float) -> list[int]:
    """Those of `pids` still running after `seconds` (killed then, so that no test leaks any)."""
    deadline = time.monotonic() + seconds
    while any(map(running, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in pids if running(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left


def _default_sigint() -> None:
    """In the child: SIGINT's default action, as a run started from a terminal has it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_slow_run(tmp_path, crop_folder, env) -> tuple[subprocess.Popen, Path, list[int]]:
    """`ctc run -j 2` of 12 jobs of about 5 s each, in its own session, once its first row is
    committed; returns the process, its store and its child processes (workers and the
    multiprocessing resource tracker)."""
    condition = write_condition(
        tmp_path, targets_bpp=[0.5, 1.0, 2.0, 3.0], metrics={"psnr_rgb": {}}
    )
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "ctc.cli", "run", str(condition), "--codec", "slowzlib",
        "--dataset", str(crop_folder), "-j", "2", "--out", str(out), "--no-progress",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env=env, start_new_session=True, stderr=subprocess.PIPE, text=True,
        preexec_fn=_default_sigint,  # a suite started in a shell's background ignores SIGINT
    )  # fmt: skip
    db = out / "results.sqlite"
    deadline, rows = time.monotonic() + 60, 0
    while rows < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
        rows = count_rows(db)
    assert proc.poll() is None, f"the run ended early: {proc.communicate()[1]}"
    assert rows >= 1
    workers = children(proc.pid)
    assert len(workers) >= 2
    return proc, db, workers


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


@needs_proc
def test_workers_end_when_the_run_is_killed(tmp_path, crop_folder, test_codecs):
    proc, db, workers = start_slow_run(tmp_path, crop_folder, test_codecs)
    os.kill(proc.pid, signal.SIGKILL)  # the run alone, not its process group
    proc.wait()
    assert wait_until_gone(workers, 3.0) == []
    assert 1 <= count_rows(db) < 12


@needs_proc
@pytest.mark.parametrize("to", ["process group", "run only"])
def test_ctrl_c_ends_the_run_at_once_and_keeps_its_rows(tmp_path, crop_folder, test_codecs, to):
    proc, db, workers = start_slow_run(tmp_path, crop_folder, test_codecs)
    before = finished_rows(db)
    start = time.monotonic()
    if to == "process group":  # as a terminal sends Ctrl-C
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    seconds = time.monotonic() - start
    assert proc.returncode == 130
    assert stderr == "ctc: error: interrupted\n"
    assert seconds < 2.0, f"{seconds:.1f} s: a job takes about 5 s, so it waited for one"
    assert wait_until_gone(workers, 1.0) == []
    after = finished_rows(db)
    assert all(after[key] == value for key, value in before.items())
    assert len(after) < 12
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]
        assert con.execute("SELECT count(*) FROM failures").fetchone() == (0,)  # none killed


WATCHED_CHILD = """
import os, subprocess, sys, time
watch = "import sys, time; from ctc.runner import _watch_parent; print('watching', flush=True); "
watch += "_watch_parent(int(sys.argv[1]), 0.05); time.sleep(60)"
child = subprocess.Popen([sys.executable, "-c", watch, str(os.getpid())])
print(child.pid, flush=True)
time.sleep(60)
"""


@needs_proc
def test_the_watchdog_ends_a_worker_whose_parent_died(tmp_path):
    # Where the kernel cannot be asked to (not Linux), a worker watches its parent itself.
    parent = subprocess.Popen(
        [sys.executable, "-c", WATCHED_CHILD], stdout=subprocess.PIPE, text=True
    )
    child = int(parent.stdout.readline())
    assert parent.stdout.readline() == "watching\n"
    time.sleep(0.2)
    assert running(child)
    parent.kill()
    parent.wait()
    assert wait_until_gone([child], 2.0) == []
