"""`ctc report`'s complexity: measured once on the run's largest image size with progress on
stderr, cached, and taken from the cache the next time; --complexity files, --no-cache,
--no-complexity; no machine path in the Complexity sheet."""

import json

import pytest
from ctc_testing import PATH_LIKE
from openpyxl import load_workbook

from ctc.cli import main


@pytest.fixture()
def run_folder(tmp_path, crop_folder, test_codecs):
    """A real finished run: quantzlib against jpeg on three small crops (the largest 67x51)."""
    from ctc_testing import write_condition

    from ctc.runner import run

    condition = write_condition(
        tmp_path, targets_bpp=[1.0, 2.0, 4.0], metrics={"psnr_rgb": {}},
        tolerance={"min_percent": -30, "max_percent": 30, "scope": "per_image"},
    )  # fmt: skip
    summary = run(str(condition), codecs=["jpeg", "quantzlib"], dataset=str(crop_folder),
                  out=tmp_path / "out", progress=False)  # fmt: skip
    assert not summary.failures
    return tmp_path / "out"


def _report(run_folder, out, *options) -> list[str]:
    return ["report", str(run_folder), "--anchor", "jpeg", "-o", str(out), "--repeat", "1",
            *options]  # fmt: skip


def _complexity_rows(path) -> dict[str, tuple]:
    ws = load_workbook(path)["Complexity"]
    return {r[0]: r for r in ws.iter_rows(values_only=True) if r[0]}


def test_a_second_report_takes_the_cached_measurements(run_folder, tmp_path, cache_folder, capsys):
    assert main(_report(run_folder, tmp_path / "a.xlsx")) == 0
    first = capsys.readouterr().err
    for codec in ("jpeg", "quantzlib"):  # the run's largest image, not 3840x2160
        assert f"ctc: complexity of {codec}: measuring on 67x51 with 1 timed run per" in first
        assert f"ctc: complexity of {codec}: timing decode 1/1" in first
    files = sorted(cache_folder.glob("*.json"))
    assert [f.name.split("-")[0] for f in files] == ["jpeg", "quantzlib"]
    mtimes = [f.stat().st_mtime_ns for f in files]
    assert main(_report(run_folder, tmp_path / "b.xlsx")) == 0
    second = capsys.readouterr().err
    assert "measuring on" not in second and "timing" not in second
    assert second.count("using the measurement cached") == 2
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    rows_a, rows_b = _complexity_rows(tmp_path / "a.xlsx"), _complexity_rows(tmp_path / "b.xlsx")
    assert rows_a["CPU time, median (s)"] == rows_b["CPU time, median (s)"]
    assert rows_a["Inference patch / tile size (pixels)"][1] == "not declared"
    # --remeasure measures again and replaces; --no-cache neither reads nor writes.
    assert main(_report(run_folder, tmp_path / "c.xlsx", "--remeasure")) == 0
    assert capsys.readouterr().err.count("measuring on 67x51") == 2
    assert [f.stat().st_mtime_ns for f in files] != mtimes
    mtimes = [f.stat().st_mtime_ns for f in files]
    assert main(_report(run_folder, tmp_path / "d.xlsx", "--no-cache",
                        "--complexity-size", "24x16")) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("measuring on 24x16") == 2 and "cached" not in err
    assert main(_report(run_folder, tmp_path / "e.xlsx", "--complexity-size", "96x64")) == 0
    err = capsys.readouterr().err
    assert "ctc: complexity: measuring on 96x64, larger than the run's largest image (67x51)" in err
    assert [f.stat().st_mtime_ns for f in files] == mtimes and len(files) == 2


def test_complexity_file_entries_no_complexity_and_no_paths(
    run_folder, tmp_path, cache_folder, capsys
):
    assert main(["complexity", "jpeg", "--size", "16x16", "--repeat", "1", "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)
    path = tmp_path / "jpeg.json"
    path.write_text(json.dumps(measured))
    # jpeg from the file, quantzlib measured (on the run's largest image) and cached
    assert main(_report(run_folder, tmp_path / "f.xlsx", "--complexity", str(path))) == 0
    err = capsys.readouterr().err
    assert "complexity of jpeg" not in err and "complexity of quantzlib: measuring" in err
    ws = load_workbook(tmp_path / "f.xlsx")["Complexity"]
    cells = [c for row in ws.iter_rows(values_only=True) for c in row if isinstance(c, str)]
    assert any("astronaut mirrored to 16x16" in c for c in cells)
    assert not [c for c in cells if str(tmp_path) in c or PATH_LIKE.search(c)]
    assert main(_report(run_folder, tmp_path / "g.xlsx", "--no-complexity")) == 0
    assert "complexity of" not in capsys.readouterr().err
    rows = _complexity_rows(tmp_path / "g.xlsx")
    assert "complexity not measured (--no-complexity)" in rows
