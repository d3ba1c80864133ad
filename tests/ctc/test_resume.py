"""A real `ctc run` killed with SIGKILL mid-run, then restarted: nothing finished is lost or
redone, and the rest is done."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
from ctc_testing import write_condition
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
