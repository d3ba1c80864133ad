"""`ctc run --scheduler`: addresses that are not one, options that do not go with it, and a
scheduler that does not answer: one line each, a non-zero exit, no traceback, no run recorded."""

import os
import socket
import sqlite3
import subprocess
import sys
import time

import pytest
from ctc_testing import write_condition

from ctc.cli import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scheduler", "localhost:8786"], "expected tcp://HOST:PORT or local:N, got 'localhost"),
        (["--scheduler", "tcp://host"], "expected tcp://HOST:PORT or local:N"),
        (["--scheduler", "tcp://host:99999"], "port must be 1 to 65535"),
        (["--scheduler", "local:0"], "local:N takes a number of workers from 1 to 1024"),
        (["--scheduler", "local:two"], "local:N takes a number of workers"),
        (["--scheduler", "local:2", "-j", "2"], "-j does not go with --scheduler"),
        (["--scheduler", "tcp://h:1", "--memory", "4"], "--memory plans workers here"),
        (["--worker-out", "/shared/out"], "--worker-out goes with --scheduler"),
        (["--scheduler", "local:1", "--worker-out", "out"], "--worker-out must be an absolute"),
        (["--retries", "-1"], "expected 0 to 100, got -1"),
        (["--retries", "1.5"], "expected a whole number, got '1.5'"),
    ],
)
def test_scheduler_usage_errors_exit_2_in_one_line(args, message, tmp_path, crop_folder, capsys):
    condition = write_condition(tmp_path)
    try:
        code = main(["run", str(condition), "--dataset", str(crop_folder), *args])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing started


def closed_port() -> int:
    """A loopback port nothing listens on (it was just bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_scheduler_that_does_not_answer_is_one_line_and_exit_1(tmp_path, crop_folder):
    condition = write_condition(tmp_path, targets_bpp=[1.0], metrics={"psnr_rgb": {}})
    address = f"tcp://127.0.0.1:{closed_port()}"
    out = tmp_path / "out"
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    cmd = [
        sys.executable, "-m", "ctc.cli", "run", str(condition), "--codec", "jpeg",
        "--dataset", str(crop_folder), "--out", str(out), "--scheduler", address,
    ]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    elapsed = time.monotonic() - start
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"ctc: error: no Dask scheduler answered at {address} within 2s "
        "(Dask's distributed.comm.timeouts.connect)"
    ]
    assert elapsed < 30  # the 2 s timeout, the start of Python and ctc
    with sqlite3.connect(out / "results.sqlite") as con:  # no run was recorded
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)
