"""benchmarks/scheduler_throughput.py's arguments: each bad one stops it at once with one error
line and exit status 2 (never a hang, a traceback or a run of the wrong work), and --help
describes every option."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "scheduler_throughput.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("scheduler_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "argument --workers: expected 1 to 1024, got 0"),
        (["--workers", "two"], "argument --workers: expected a whole number, got 'two'"),
        (["--repeat", "0"], "argument --repeat: expected 1 to 100, got 0"),
        (["--targets", "-1"], "argument --targets: expected above 0 to 24 bpp, got -1"),
        (["--targets", "nan"], "argument --targets: expected above 0 to 24 bpp, got nan"),
        (["--json", "/nonexistent-folder/figures.json"], "is not a file in an existing folder"),
        (["--dataset", "/nonexistent-folder"], "error: --dataset: no dataset '/nonexistent-fol"),
    ],
)
def test_bad_arguments_stop_with_one_line(bench, args, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        bench.main(args)
    assert stopped.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and message in errors[0], errors
    assert "Traceback" not in capsys.readouterr().err


def test_help_describes_every_option(bench, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for option, words in [
        ("--dataset", "the images to code"),
        ("--targets", "target bits per pixel"),
        ("--workers", "worker counts to measure"),
        ("--repeat", "the best kept (1 to 100"),
        ("--json", "also write the figures here"),
    ]:
        assert option in out and words in out, option


def test_worker_counts_are_sorted_once_each(bench):
    assert bench.parse_arguments(["--workers", "2", "1", "2"]).workers == [1, 2]
