"""External encoders run under a timeout and an OS limit on their address space: a Dask worker's
memory limit (like the harness's worker plan) sees only the job's own process, never the tools
it starts. A tool that meets either limit fails its job in one line that says so."""

import resource
import sys
import time

import pytest

from anchors.bpg import BpgCodec
from anchors.ffmpeg import (
    DEFAULT_TOOL_MEMORY,
    MEMORY_ENV,
    AnchorError,
    run_bytes,
    run_tool,
    tool_memory_limit,
)

SHOW_LIMIT = "import resource; print(*resource.getrlimit(resource.RLIMIT_AS))"


@pytest.mark.parametrize(("setting", "limit"), [(None, DEFAULT_TOOL_MEMORY), ("1.5", 1.5e9)])
def test_every_tool_runs_under_the_memory_limit(setting, limit, monkeypatch):
    if setting is None:
        monkeypatch.delenv(MEMORY_ENV, raising=False)
    else:
        monkeypatch.setenv(MEMORY_ENV, setting)
    shown = run_tool([sys.executable, "-c", SHOW_LIMIT], "python").split()
    assert shown == [str(int(limit))] * 2
    assert run_bytes([sys.executable, "-c", SHOW_LIMIT], "python").split() == [b"%d" % limit] * 2
    assert resource.getrlimit(resource.RLIMIT_AS)[0] != limit  # this process is left alone


def test_a_tool_over_its_memory_limit_fails_in_one_line_that_names_it(monkeypatch):
    monkeypatch.setenv(MEMORY_ENV, "0.5")
    grab = [sys.executable, "-c", "bytearray(2 * 10**9)"]
    with pytest.raises(AnchorError) as failure:
        run_tool(grab, "python")
    assert str(failure.value) == (
        f"python failed (exit 1): MemoryError (it runs with at most 0.5 GB of address space; "
        f"{MEMORY_ENV} raises it)"
    )


def test_an_anchor_that_meets_the_limit_fails_its_encode_clearly(monkeypatch, small_photo):
    monkeypatch.setenv(MEMORY_ENV, "0.05")  # too little for FFmpeg to start x265
    with pytest.raises(AnchorError, match="^ffmpeg libx265 failed .*at most 0.05 GB") as failure:
        BpgCodec("embedded").encode(small_photo, 30)
    assert "\n" not in str(failure.value)
    monkeypatch.delenv(MEMORY_ENV)  # the default: it codes
    codec = BpgCodec("embedded")
    assert codec.decode(codec.encode(small_photo, 30)).shape == small_photo.shape


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "lots"])
def test_a_memory_setting_that_is_not_a_positive_number_is_one_line(value, monkeypatch):
    monkeypatch.setenv(MEMORY_ENV, value)
    with pytest.raises(AnchorError, match=f"^{MEMORY_ENV} must be a positive number of GB, got"):
        run_tool(["true"], "true")


@pytest.mark.parametrize("value", ["1e10", "65537", "1e-12", "0.001"])
def test_a_memory_setting_out_of_range_is_one_line_that_names_it(value, monkeypatch):
    monkeypatch.setenv(MEMORY_ENV, value)
    with pytest.raises(AnchorError) as failure:
        run_tool(["true"], "true")
    assert str(failure.value) == f"{MEMORY_ENV} must be 0.01 to 65536 GB, got {value!r}"


def test_the_ends_of_the_memory_range_are_taken(monkeypatch):
    monkeypatch.setenv(MEMORY_ENV, "0.01")
    assert tool_memory_limit() == 10_000_000
    monkeypatch.setenv(MEMORY_ENV, "65536")  # the largest: setrlimit takes it in the tool
    shown = run_tool([sys.executable, "-c", SHOW_LIMIT], "python").split()
    assert shown == [str(65536 * 10**9)] * 2


def test_a_tool_past_its_timeout_fails_soon_in_one_line():
    start = time.monotonic()
    with pytest.raises(AnchorError, match=r"^sleep: no result within 0.5 s$"):
        run_tool(["sleep", "30"], "sleep", timeout=0.5)
    assert time.monotonic() - start < 10
