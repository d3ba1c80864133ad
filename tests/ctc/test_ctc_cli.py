import csv
import io
import json
import shlex
import sqlite3
import subprocess
import sys

import pytest
from ctc_testing import write_condition

from ctc.cli import main
from ctc.store import COLUMN_NAMES, Store


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
        (["run", "quick", "-j", "nan"], "expected a whole number, got 'nan'"),
        (["run", "quick", "-j", "-2"], "expected at least 1, got -2"),
        (["complexity", "jpeg", "--knob", "nan"], "expected a finite number, got 'nan'"),
        (["complexity", "jpeg", "--size", "100000x100000"], "expected at most 67,108,864 pixels"),
        (["report", "x", "--complexity-size", "9000x9000"], "expected at most 67,108,864"),
        (["dataset", "fetch", "kodak", "--timeout", "nan"], "expected a finite number"),
        (["dataset", "fetch", "kodak", "--timeout", "-1"], "expected seconds above 0"),
        (["dataset", "fetch", "kodak", "--timeout", "inf"], "expected a finite number"),
        (["dataset", "fetch", "kodak", "--base-url", "mirror"], "expected an http, https, ftp"),
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


def fill_store(folder, rows: int) -> None:
    """A real store holding `rows` made-up result rows."""
    with Store(folder) as store:
        for i in range(rows):
            store.add_result(
                {c: i for c in COLUMN_NAMES}
                | {"codec": "jpeg", "codec_version": "v1", "image": f"im{i}", "condition": "c"}
            )


@pytest.mark.parametrize("csv_output", [True, False], ids=["csv", "table"])
def test_a_reader_that_leaves_early_ends_the_output_quietly(tmp_path, csv_output):
    fill_store(tmp_path, 1000)  # far more than a pipe holds
    command = [sys.executable, "-m", "ctc.cli", "results", str(tmp_path)]
    command += ["--csv"] if csv_output else []
    pipeline = f"set -o pipefail; {shlex.join(command)} | head -1"
    proc = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stderr) == (0, "")
    header = ",".join(COLUMN_NAMES) if csv_output else "codec  image  target"
    assert proc.stdout.startswith(header) and proc.stdout.count("\n") == 1


def test_a_results_file_that_is_not_a_store_is_refused_and_kept(tmp_path, crop_folder):
    (tmp_path / "results.sqlite").write_bytes(b"my notes, not a database\n" * 100)
    before = (tmp_path / "results.sqlite").read_bytes()
    cond = write_condition(tmp_path)
    for args in (["results", tmp_path], ["report", tmp_path, "--no-complexity"],
                 ["run", cond, "--dataset", crop_folder, "--out", tmp_path]):  # fmt: skip
        proc = ctc(*args)
        assert proc.returncode == 1
        assert proc.stderr == f"ctc: error: {tmp_path}/results.sqlite: file is not a database\n"
    assert (tmp_path / "results.sqlite").read_bytes() == before

    other = tmp_path / "other"
    other.mkdir()
    with sqlite3.connect(other / "results.sqlite") as con:
        con.execute("CREATE TABLE results (name TEXT, score REAL)")
    proc = ctc("results", other)
    assert proc.returncode == 1
    assert proc.stderr.endswith("not a ctc results store (its results table differs)\n")

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with sqlite3.connect(foreign / "results.sqlite") as con:
        con.execute("CREATE TABLE rows (x)")
    before = (foreign / "results.sqlite").read_bytes()
    proc = ctc("results", foreign)
    assert proc.returncode == 1 and proc.stderr.endswith("(it has tables rows)\n")
    assert (foreign / "results.sqlite").read_bytes() == before


def test_a_damaged_run_record_is_one_line(tmp_path, crop_folder, capsys):
    cond = write_condition(tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(cond), "--dataset", str(crop_folder), "--out", str(out)]) == 0
    with sqlite3.connect(out / "results.sqlite") as con:
        con.execute("UPDATE runs SET record = '{\"condition\": ' WHERE id = 1")
    capsys.readouterr()
    assert main(["results", str(out)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "damaged record of run 1" in err[0]


def test_complexity_files_that_are_not_measurements_are_usage_errors(tmp_path, capsys):
    fill_store(tmp_path, 1)
    for content, problem in [
        (5, "not a mapping"),
        ({"codec": "jpeg"}, "no version, networks, rate_points, picture, knob, encoder, decoder, "
                            "gpu, platform"),
        ([{**dict.fromkeys(["codec", "version", "networks", "rate_points"], 1),
           **dict.fromkeys(["picture", "knob", "encoder", "decoder", "gpu", "platform"], {}),
           "gpu": []}], "gpu not mappings"),
    ]:  # fmt: skip
        path = tmp_path / "complexity.json"
        path.write_text(json.dumps(content))
        assert main(["report", str(tmp_path), "--complexity", str(path)]) == 2
        err = capsys.readouterr().err.splitlines()
        assert (
            err
            == [
                f"ctc: error: complexity file {path}: entry 1 is not `ctc complexity --json` "
                f"output ({problem})"
            ]
            or problem in err[0]
        )


def test_a_changed_image_is_refused_and_old_bitstreams_are_kept(tmp_path, crop_folder, capsys):
    import shutil

    import numpy as np
    from PIL import Image

    data = tmp_path / "data"
    shutil.copytree(crop_folder, data)
    cond, out = write_condition(tmp_path), tmp_path / "out"
    args = ["run", str(cond), "--dataset", str(data), "--out", str(out)]
    assert main(args) == 0
    stored = {p: p.read_bytes() for p in out.rglob("*bpp.*")}
    name = sorted(data.glob("*.png"))[0]
    pixels = np.asarray(Image.open(name)).copy()
    pixels[0, 0] ^= 1
    Image.fromarray(pixels).save(name)
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"other pixels for image(s) {name.stem} under this condition" in err
    assert {p: p.read_bytes() for p in out.rglob("*bpp.*")} == stored


def test_a_lock_file_that_is_a_link_or_a_fifo_is_refused_untouched(tmp_path, crop_folder, capsys):
    import os

    cond = write_condition(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for kind in ("link", "fifo"):
        out = tmp_path / kind
        out.mkdir()
        if kind == "link":
            (out / ".lock").symlink_to(victim)
        else:
            os.mkfifo(out / ".lock")
        assert main(["run", str(cond), "--dataset", str(crop_folder), "--out", str(out)]) == 1
        assert ".lock" in capsys.readouterr().err
    assert victim.read_text() == "precious"


@pytest.mark.parametrize(
    "args",
    [
        ["run", "quick", "--dataset", ""],
        ["run", "quick", "--out", " "],
        ["results", ""],
        ["report", "x", "-o", "report.csv"],
        ["report", "x", "-o", "/dev/null"],
        ["report", "x", "--anchor", ","],
        ["dataset", "fetch", "kodak", "--base-url", "http://[::1"],
        ["dataset", "fetch", "kodak", "--base-url", "http://a b/"],
        ["dataset", "fetch", "kodak", "--base-url", "http://x:abc/"],
        ["report", "x", "--complexity", "/dev/zero"],
        ["complexity", "nic:"],
    ],
)
def test_empty_or_malformed_values_are_usage_errors(args, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x").mkdir()
    try:
        code = main(args)
    except SystemExit as e:  # argparse's own usage errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err


def test_a_log_gets_progress_as_lines_not_carriage_returns(tmp_path, crop_folder):
    proc = ctc("run", "quick", "--codec", "jpeg", "--dataset", crop_folder, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("ctc quick:   0%") and "100%" in lines[-2]
