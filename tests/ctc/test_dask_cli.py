"""`ctc run --scheduler`: addresses that are not one, options that do not go with it, and a
scheduler that does not answer: one line each, a non-zero exit, no traceback, no run recorded."""

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from ctc_testing import write_condition

from ctc.cli import main
from ctc.executors import parse_scheduler


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scheduler", "localhost:8786"], "expected tcp://HOST:PORT or local:N, got 'localhost"),
        (["--scheduler", "tcp://host"], "expected tcp://HOST:PORT or local:N"),
        (["--scheduler", "tcp://host:99999"], "port must be 1 to 65535"),
        (["--scheduler", "local:0"], "local:N takes a number of workers from 1 to 1024"),
        (["--scheduler", "local:two"], "local:N takes a number of workers"),
        (["--scheduler", "local:\u0967"], "local:N takes a number of workers"),  # Devanagari 1
        (["--scheduler", "tcp://...:1"], "'...' is not an IPv4 address"),
        (["--scheduler", "tcp://.:1"], "'.' is not an IPv4 address"),
        (["--scheduler", "tcp://999.1.1.1:1"], "'999.1.1.1' is not an IPv4 address"),
        (["--scheduler", "tcp://[1:::2]:1"], "'[1:::2]' is not an IPv6 address"),
        (["--scheduler", "tcp://a..b:1"], "'a..b' is not a host name (labels of 1 to 63"),
        (["--scheduler", "tcp://-a.b:1"], "'-a.b' is not a host name"),
        (["--scheduler", "tcp://a-.b:1"], "'a-.b' is not a host name"),
        (["--scheduler", f"tcp://{'a' * 64}.b:1"], "is not a host name"),
        (["--scheduler", f"tcp://{'.'.join(['a' * 63] * 4)}:1"], "is not a host name"),
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


@pytest.mark.parametrize(
    "address",
    ["tcp://localhost:8786", "tcp://[::1]:8786", "tcp://10.0.0.1:1", "tcp://a-b.example.org.:1",
     f"tcp://{'a' * 63}.b:1", "local:1", "local:1024"],
)  # fmt: skip
def test_valid_addresses_parse(address):
    assert str(parse_scheduler(address)) == address


@contextmanager
def listener(on_connect: Callable[[socket.socket], None]) -> Iterator[str]:
    """A loopback TCP server that is no Dask scheduler: `on_connect` handles each connection
    (then it is closed); the address, tcp://127.0.0.1:PORT."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # closed: the test is over
                return
            held.append(conn)
            on_connect(conn)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        for conn in held:
            conn.close()


def run_against(address: str, tmp_path, crop_folder) -> tuple[subprocess.CompletedProcess, float]:
    """`ctc run` of JPEG on `address`, with a 2 s connect timeout: its result and seconds."""
    condition = write_condition(tmp_path, targets_bpp=[1.0], metrics={"psnr_rgb": {}})
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    cmd = [
        sys.executable, "-m", "ctc.cli", "run", str(condition), "--codec", "jpeg",
        "--dataset", str(crop_folder), "--out", str(tmp_path / "out"), "--scheduler", address,
    ]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    return proc, time.monotonic() - start


def assert_no_run_recorded(out) -> None:
    with sqlite3.connect(out / "results.sqlite") as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_a_silent_listener_is_no_scheduler_within_the_timeout(tmp_path, crop_folder):
    with listener(lambda conn: None) as address:  # accepts, never says a word
        proc, elapsed = run_against(address, tmp_path, crop_folder)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"ctc: error: no Dask scheduler answered at {address} within 2s "
        "(Dask's distributed.comm.timeouts.connect)"
    ]
    assert elapsed < 30
    assert_no_run_recorded(tmp_path / "out")


def test_an_http_server_is_no_scheduler(tmp_path, crop_folder):
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        line = server.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (...) ..."
        address = f"tcp://127.0.0.1:{line.split(' port ')[1].split()[0]}"
        proc, elapsed = run_against(address, tmp_path, crop_folder)
    finally:
        server.kill()
        server.wait()
    assert proc.returncode == 1
    (line,) = proc.stderr.splitlines()
    assert line.startswith(
        (f"ctc: error: no Dask scheduler answered at {address} within 2s",
         f"ctc: error: {address}: not a Dask scheduler (")
    ), line  # fmt: skip
    assert elapsed < 30
    assert_no_run_recorded(tmp_path / "out")


def test_a_service_that_speaks_first_is_not_a_scheduler_not_out_of_memory(tmp_path, crop_folder):
    def banner(conn: socket.socket) -> None:
        conn.sendall(b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n")  # read as a frame length

    with listener(banner) as address:
        proc, elapsed = run_against(address, tmp_path, crop_folder)
    assert proc.returncode == 1
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"ctc: error: {address}: not a Dask scheduler (MemoryError"), line
    assert "out of memory" not in line
    assert_no_run_recorded(tmp_path / "out")


def test_run_help_gives_the_retries_range(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "recording it as failed (0 to 100, default 0)" in help_text
