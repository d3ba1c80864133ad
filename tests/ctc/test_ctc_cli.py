import csv
import io
import subprocess
import sys

import pytest
from ctc_testing import write_condition

from ctc.cli import main
from ctc.store import COLUMN_NAMES


def ctc(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "ctc.cli", *map(str, args)],
        capture_output=True, text=True, timeout=300, env=env, cwd=cwd,
    )  # fmt: skip


@pytest.mark.parametrize(
    "args", [[], ["run"], ["results"], ["dataset"], ["dataset", "fetch"]], ids=" ".join
)
def test_help_everywhere(args):
    proc = ctc(*args, "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: ctc")


@pytest.mark.parametrize(
    "args,message",
    [
        ([], "the following arguments are required: COMMAND"),
        (["run", "quick", "-j", "0"], "expected at least 1"),
        (["run", "nope"], "ctc: error: no condition 'nope'"),
        (["run", "quick", "--codec", "nope"], "ctc: error: unknown codec 'nope'"),
        (["run", "quick", "--dataset", "nowhere"], "ctc: error: no dataset 'nowhere'"),
        (["results", "nowhere"], "ctc: error: no results in nowhere"),
        (["dataset", "fetch", "imagenet"], "ctc: error: unknown dataset 'imagenet'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args, message, capsys):
    try:
        code = main(args)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert "Traceback" not in err


def test_invalid_condition_file_is_a_usage_error(tmp_path, capsys):
    bad = write_condition(tmp_path, tolerance={"min_percent": -5})
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"ctc: error: {bad}: tolerance.max_percent: required field is missing"]


def test_run_then_results_table_and_csv(tmp_path, crop_folder, capsys):
    cond = write_condition(tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(cond), "--dataset", str(crop_folder), "--out", str(out)]) == 0
    assert "6 jobs, 0 already done, 0 from frozen anchor results, 6 done now, 0 failed" in (
        capsys.readouterr().err
    )
    assert main(["results", str(out)]) == 0
    table = capsys.readouterr().out
    assert "psnr_dataset" in table and "jpeg: Pillow" in table
    lines = [line.split() for line in table.splitlines()]
    assert sum(cells[:1] == ["jpeg"] for cells in lines) == 6  # one per image and target
    assert sum(cells[:2] == ["test", "jpeg"] for cells in lines) == 2  # one per target
    assert main(["results", str(out), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0]) == list(COLUMN_NAMES) and len(rows) == 6


def test_condition_codecs_that_fail_to_load_are_skipped_with_a_warning(
    tmp_path, crop_folder, test_codecs
):
    cond = write_condition(tmp_path, codecs=["missing_model"], anchors=["jpeg"])
    out = tmp_path / "out"
    proc = ctc("run", cond, "--dataset", crop_folder, "--out", out, env=test_codecs)
    assert proc.returncode == 0, proc.stderr
    assert "ctc: warning: codec 'missing_model': failed to load: FileNotFoundError" in proc.stderr
    # asked for by name, the same failure is an error
    proc = ctc("run", cond, "--codec", "missing_model,jpeg", "--dataset", crop_folder,
               "--out", out, env=test_codecs)  # fmt: skip
    assert proc.returncode == 1 and "ctc: error: codec 'missing_model'" in proc.stderr
    assert "6 already done" in proc.stderr


def test_failed_jobs_exit_1(tmp_path, crop_folder, test_codecs):
    cond = write_condition(tmp_path, anchors=["cropping"])
    proc = ctc("run", cond, "--dataset", crop_folder, "--out", tmp_path / "o", env=test_codecs)
    assert proc.returncode == 1
    assert "ctc: error: cropping cat 0.5 bpp: JobError: codec 'cropping' decoded" in proc.stderr
    assert "Traceback" not in proc.stderr
    results = ctc("results", tmp_path / "o")
    assert results.returncode == 0 and "failed: cropping cat 0.5 bpp: JobError" in results.stdout
