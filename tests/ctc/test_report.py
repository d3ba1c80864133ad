"""ctc report: the workbook read back with openpyxl and checked against the SQLite store, BD
values against ctc.bdrate, CSV (frozen) anchors, plots, and the command line."""

import io
import math

import numpy as np
import pytest
from openpyxl import load_workbook

from ctc.bdrate import bd_dataset, bd_rate
from ctc.cli import main
from ctc.report import ReportError, build_report
from ctc.report.data import load
from ctc.results import write_csv
from ctc.store import Store

TARGETS = [0.06, 0.12, 0.25, 0.5, 1.0, 1.5]
IMAGES = {"img_a": 1.0, "img_b": 2.0, "img_c": 0.7}  # rate scale of each image
SAVING = {"img_a": 0.8, "img_b": 0.7, "img_c": 0.9}  # test rate / anchor rate per image


def _row(codec: str, image: str, target: float, bpp: float, psnr: float, run_id: int) -> dict:
    msssim = 1 - 10 ** (-(psnr - 14) / 10)  # rises with psnr, in (0, 1)
    return {
        "codec": codec, "codec_version": f"{codec} 1.0", "image": image,
        "image_sha256": f"sha-{image}", "target_bpp": target, "condition_hash": "c0ffee" * 4,
        "condition": "unit", "width": 64, "height": 48, "knob_name": "q",
        "knob_value": round(100 * bpp, 3), "rate_control": "search", "n_encodes": 4,
        "bytes": int(bpp * 64 * 48 / 8), "bpp": bpp, "deviation_percent": 100 * (bpp / target - 1),
        "in_tolerance": int(abs(bpp / target - 1) <= 0.05), "psnr_rgb": psnr,
        "sse_rgb": 1000, "n_values": 9216, "msssim_rgb": msssim,
        "msssim_rgb_db": -10 * math.log10(1 - msssim), "vmaf": None,
        "encode_seconds": 0.01 * (3 if codec == "test" else 1) * (1 + target),
        "decode_seconds": 0.02 * (0.5 if codec == "test" else 1),
        "rate_control_seconds": 0.1, "bitstream": f"b/{codec}/{image}/{target}.bin",
        "run_id": run_id, "finished_at": "2026-01-01T00:00:00+00:00",
    }  # fmt: skip


def _write_store(folder, floor: int = 0) -> None:
    """Two codecs; the test saves SAVING[image] of the anchor's bits at every quality. With
    `floor`, the test's first `floor` targets repeat its file for target `floor` (a codec that
    cannot go lower)."""
    with Store(folder) as store:
        record = {
            "condition": {"name": "unit", "targets_bpp": TARGETS, "anchors": ["anchor"],
                          "bd_ranges": {"low": [0.06, 0.5], "high": [0.25, 1.5]}},
            "condition_hash": "c0ffee" * 4,
            "dataset": {"name": "unit", "pixel_sha256": {i: f"sha-{i}" for i in IMAGES}},
            "codecs": {"anchor": "anchor 1.0", "test": "test 1.0"},
            "ctc_version": "0.1.0", "python": "3.11", "platform": "unit", "machine": "x",
            "cpu_count": 2, "jobs": 1,
        }  # fmt: skip
        run_id = store.begin_run("unit", "c0ffee" * 4, record)
        for image, scale in IMAGES.items():
            for n, target in enumerate(TARGETS):
                bpp = target * scale * (1.02 if n % 2 else 0.98)
                psnr = 24 + 8 * math.log10(bpp / 0.06) + n * 0.1
                store.add_result(_row("anchor", image, target, bpp, psnr, run_id))
                m = max(n, floor)
                bpp_t = TARGETS[m] * scale * (1.02 if m % 2 else 0.98) * SAVING[image]
                psnr_t = 24 + 8 * math.log10(bpp_t / SAVING[image] / 0.06) + m * 0.1
                store.add_result(_row("test", image, target, bpp_t, psnr_t, run_id))
        store.end_run(run_id, "finished")


@pytest.fixture()
def run_dir(tmp_path):
    folder = tmp_path / "run"
    _write_store(folder)
    return folder


def _header_index(ws, row: int = 1) -> dict[str, int]:
    return {c.value: c.column for c in ws[row] if c.value}


def test_workbook_matches_the_store(run_dir, tmp_path):
    out = tmp_path / "rep" / "unit.xlsx"
    report = build_report(run_dir, ["anchor"], out, measure=False)
    assert report.workbook == out and out.is_file()
    wb = load_workbook(out)
    assert wb.sheetnames == [
        "Summary", "BD per image", "Results anchor", "Results test", "RD data", "RD charts",
        "Complexity", "Conditions",
    ]  # fmt: skip
    with Store(run_dir) as store:
        rows = store.results()
    # Every results sheet holds its codec's rows, numbers stored as numbers.
    for codec in ("anchor", "test"):
        ws = wb[f"Results {codec}"]
        assert ws.freeze_panes == "B2"
        columns = _header_index(ws)
        expected = sorted(
            (r for r in rows if r["codec"] == codec), key=lambda r: (r["image"], r["target_bpp"])
        )
        assert ws.max_row == 1 + len(expected) == 19
        for i, r in enumerate(expected, start=2):
            assert ws.cell(i, columns["Image"]).value == r["image"]
            for header, column in (
                ("Target (bpp)", "target_bpp"), ("Rate (bpp)", "bpp"), ("Bytes", "bytes"),
                ("Deviation (%)", "deviation_percent"), ("PSNR RGB (dB)", "psnr_rgb"),
                ("MS-SSIM RGB (linear)", "msssim_rgb"), ("Encode time (s)", "encode_seconds"),
                ("Decode time (s)", "decode_seconds"), ("Knob value (q)", "knob_value"),
            ):  # fmt: skip
                value = ws.cell(i, columns[header]).value
                assert isinstance(value, (int, float)) and not isinstance(value, bool)
                assert value == pytest.approx(r[column], rel=1e-12)
            assert ws.cell(i, columns["In tolerance"]).value is bool(r["in_tolerance"])
        assert "VMAF (0–100)" not in columns  # no values, no column

    # Summary: BD-rates equal ctc.bdrate's on the store's curves.
    ws = wb["Summary"]
    assert ws.freeze_panes == "E6"
    by_metric = {ws.cell(r, 3).value: r for r in range(6, 8)}
    assert set(by_metric) == {"PSNR RGB", "MS-SSIM RGB"}
    row = by_metric["PSNR RGB"]
    assert [ws.cell(row, c).value for c in (1, 2, 4)] == ["test", "anchor", 3]
    curves = {"anchor": {}, "test": {}}
    for r in rows:
        curves[r["codec"]].setdefault(r["image"], ([], [], []))
        for lst, key in zip(
            curves[r["codec"]][r["image"]], ("bpp", "psnr_rgb", "target_bpp"), strict=True
        ):
            lst.append(r[key])
    for column, bpp_range in ((5, "low"), (7, "high"), (9, "all")):
        expected = bd_dataset(curves["anchor"], curves["test"], bpp_range=bpp_range)
        assert ws.cell(row, column).value == pytest.approx(expected.per_image_mean, rel=1e-12)
        assert ws.cell(row, column + 1).value == pytest.approx(
            expected.average_curve.value, rel=1e-12
        )
    # The per-image mean is the mean of log-rate shifts of -20, -30, -10 %.
    assert ws.cell(row, 9).value == pytest.approx(-20.0, abs=1e-9)
    assert report.bd[0].cells["all"].per_image["img_b"] == pytest.approx(-30.0)

    # Tolerance and time ratios.
    texts = {ws.cell(r, 1).value: r for r in range(1, ws.max_row + 1)}
    header = texts["Codec"] if "Codec" in texts else None
    line = texts["test"] if "test" in texts else None
    assert header and line
    cols = {ws.cell(header, c).value: c for c in range(1, 16) if ws.cell(header, c).value}
    in_tol = sum(r["in_tolerance"] for r in rows if r["codec"] == "test")
    assert ws.cell(line, cols["In tolerance (count)"]).value == in_tol
    assert ws.cell(line, cols["In tolerance (%)"]).value == pytest.approx(100 * in_tol / 18)
    # Encode 3x slower at every pair, decode 2x faster: geometric means 3 and 0.5.
    assert ws.cell(line, cols["EncT vs anchor (ratio, geo. mean)"]).value == pytest.approx(3.0)
    assert ws.cell(line, cols["DecT vs anchor (ratio, geo. mean)"]).value == pytest.approx(0.5)

    # BD per image, charts and their data, conditions.
    per_image = wb["BD per image"]
    assert per_image.max_row == 1 + 2 * 3
    charts = wb["RD charts"]
    assert len(charts._charts) == 2
    data = wb["RD data"]
    means = [data.cell(r, 3).value for r in range(1, data.max_row + 1)]
    anchor_mean = np.mean(
        [r["bpp"] for r in rows if r["codec"] == "anchor" and r["target_bpp"] == 0.06]
    )
    assert anchor_mean in means
    conditions = [tuple(c.value for c in r) for r in wb["Conditions"].iter_rows()]
    assert ("condition hash", "c0ffee" * 4) in conditions
    assert ("pixel sha256: img_a", "sha-img_a") in conditions
    assert ("anchor", "anchor 1.0 [this run]") in conditions
    assert wb["Complexity"]["A3"].value == "complexity not measured (--no-complexity)"

    # Plots, one per metric, next to the workbook.
    assert sorted(p.name for p in report.plots) == [
        "unit-rd-msssim_rgb.png",
        "unit-rd-psnr_rgb.png",
    ]
    for path in report.plots:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.parent == out.parent


def test_msssim_is_integrated_in_db(run_dir, tmp_path):
    report = build_report(run_dir, ["anchor"], tmp_path / "r.xlsx", measure=False, plots=False)
    (row,) = [r for r in report.bd if r.metric.column == "msssim_rgb"]
    data = load(run_dir)
    from ctc.report.data import curves

    anchor, test = curves(data.rows["anchor"], row.metric), curves(data.rows["test"], row.metric)
    image = "img_a"
    in_db = bd_rate(
        anchor[image].rate, -10 * np.log10(1 - anchor[image].quality),
        test[image].rate, -10 * np.log10(1 - test[image].quality),
    )  # fmt: skip
    assert row.cells["all"].per_image[image] == pytest.approx(in_db, rel=1e-12)


def test_csv_anchor_gives_the_same_bd(run_dir, tmp_path):
    with Store(run_dir) as store:
        rows = [r for r in store.results() if r["codec"] == "anchor"]
    # A frozen file also holds fixed-QP rows (no target) and rows of another condition.
    fixed = [dict(r, target_bpp=None, rate_control="fixed", bpp=r["bpp"] * 1.3) for r in rows]
    other = [dict(r, condition_hash="other", condition="jpeg_ai", bpp=r["bpp"] * 2) for r in rows]
    text = io.StringIO()
    write_csv(fixed + rows + other, text)
    frozen = tmp_path / "anchor.csv"
    frozen.write_text(text.getvalue())
    direct = build_report(run_dir, ["anchor"], tmp_path / "a.xlsx", measure=False, plots=False)
    via_csv = build_report(run_dir, [str(frozen)], tmp_path / "b.xlsx", measure=False, plots=False)
    assert via_csv.anchors == ["anchor (anchor.csv)"]
    values = {(r.codec, r.metric.column): r.cells["all"].per_image_mean for r in via_csv.bd}
    assert values[("test", "psnr_rgb")] == pytest.approx(direct.bd[0].cells["all"].per_image_mean)
    # The run's own anchor is compared with its frozen copy too: identical curves, 0 %.
    assert values[("anchor", "psnr_rgb")] == pytest.approx(0.0, abs=1e-9)


def test_a_codec_that_cannot_reach_low_targets(tmp_path):
    # The test codec serves 0.06, 0.12 and 0.25 bpp with one file: 2 distinct low-range points.
    _write_store(tmp_path / "run", floor=2)
    report = build_report(tmp_path / "run", ["anchor"], tmp_path / "r.xlsx", method="cubic",
                          measure=False, plots=False)  # fmt: skip
    cells = report.bd[0].cells
    assert cells["low"].per_image_mean is None
    assert "at least 4 distinct points, got 2" in cells["low"].error
    assert cells["high"].per_image_mean == pytest.approx(-20.0)  # 0.25-1.5: all distinct
    wb = load_workbook(tmp_path / "r.xlsx")
    ws = wb["Summary"]
    assert "cubic polynomial (VCEG-M33)" in ws["A2"].value
    assert ws.cell(6, 5).value is None and "low: image" in ws.cell(6, 13).value
    assert ws.cell(6, 7).value == pytest.approx(-20.0)


def test_errors(run_dir, tmp_path):
    with pytest.raises(ReportError, match="neither a codec of the run"):
        build_report(run_dir, ["bpg"], tmp_path / "r.xlsx", measure=False)
    with pytest.raises(ReportError, match="no rows of condition 'unit'"):
        build_report(run_dir, [str(_csv_of_other_condition(run_dir, tmp_path))], measure=False)
    with pytest.raises(ReportError, match="no results"):
        build_report(tmp_path / "empty", ["anchor"], measure=False)
    with pytest.raises(ReportError, match="aggregation"):
        build_report(run_dir, ["anchor"], aggregation="median", measure=False)


def test_cli_report(run_dir, tmp_path, capsys):
    out = tmp_path / "cli.xlsx"
    code = main(["report", str(run_dir), "--anchor", "anchor", "-o", str(out), "--no-complexity"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "test vs anchor" in captured.out and "-20.00" in captured.out
    assert out.is_file() and (tmp_path / "cli-rd-psnr_rgb.png").is_file()
    assert main(["report", str(run_dir), "--anchor", "nope", "--no-complexity"]) == 2
    assert "nope" in capsys.readouterr().err


def test_real_run_report_with_complexity(tmp_path, crop_folder, test_codecs):
    """A real run (quantzlib against jpeg on small crops), reported with measured complexity."""
    from ctc_testing import write_condition

    from ctc.complexity import test_picture
    from ctc.runner import run

    condition = write_condition(
        tmp_path, targets_bpp=[1.0, 2.0, 4.0], metrics={"psnr_rgb": {}},
        tolerance={"min_percent": -30, "max_percent": 30, "scope": "per_image"},
    )  # fmt: skip
    summary = run(str(condition), codecs=["jpeg", "quantzlib"], dataset=str(crop_folder),
                  out=tmp_path / "out", progress=False)  # fmt: skip
    assert not summary.failures
    report = build_report(
        tmp_path / "out", ["jpeg"], tmp_path / "real.xlsx",
        complexity_picture=test_picture(48, 32), complexity_repeat=1,
    )  # fmt: skip
    assert [c["codec"] for c in report.complexity] == ["jpeg", "quantzlib"]
    wb = load_workbook(tmp_path / "real.xlsx")
    ws = wb["Results quantzlib"]
    columns = _header_index(ws)
    with Store(tmp_path / "out") as store:
        stored = {
            (r["image"], r["target_bpp"]): r for r in store.results() if r["codec"] == "quantzlib"
        }
    for i in range(2, ws.max_row + 1):
        r = stored[(ws.cell(i, columns["Image"]).value, ws.cell(i, columns["Target (bpp)"]).value)]
        assert ws.cell(i, columns["Bytes"]).value == r["bytes"]
        assert ws.cell(i, columns["PSNR RGB (dB)"]).value == pytest.approx(r["psnr_rgb"])
    assert ws.max_row - 1 == len(stored) == 9
    complexity_cells = [c.value for row in wb["Complexity"].iter_rows() for c in row]
    assert any(
        isinstance(v, str) and v.startswith("quantzlib: quantzlib 1") for v in complexity_cells
    )
    platform = {  # the run's platform section: what its times were taken on
        row[0]: row[1] for ws in wb for row in ws.iter_rows(values_only=True) if len(row) > 1
    }
    assert platform["jobs"] == 1 and platform["threads"] == 1


def _csv_of_other_condition(run_dir, tmp_path):
    with Store(run_dir) as store:
        rows = [dict(r, condition="other") for r in store.results() if r["codec"] == "anchor"]
    text = io.StringIO()
    write_csv([dict(r, condition_hash="x") for r in rows], text)
    path = tmp_path / "other.csv"
    path.write_text(text.getvalue())
    return path


def test_an_anchor_file_that_is_not_text_is_one_error(run_dir, tmp_path, capsys):
    bad = tmp_path / "anchor.csv"
    bad.write_bytes(b"codec,image\n\xff\xfe\x00garbage\n")
    with pytest.raises(ReportError, match="not a `ctc results --csv` file"):
        build_report(run_dir, [str(bad)], tmp_path / "x.xlsx", measure=False, plots=False)
    code = main(["report", str(run_dir), "--anchor", str(bad), "--out", str(tmp_path / "y.xlsx")])
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1 and "anchor.csv" in err


def _summary_text(path) -> str:
    ws = load_workbook(path)["Summary"]
    return "\n".join(str(c.value) for row in ws.iter_rows() for c in row if c.value is not None)


def test_time_ratios_say_when_the_anchor_was_not_timed_in_this_run(run_dir, tmp_path):
    with Store(run_dir) as store:
        rows = [r for r in store.results() if r["codec"] == "anchor"]
    text = io.StringIO()
    write_csv(rows, text)
    frozen = tmp_path / "anchor.csv"
    frozen.write_text(text.getvalue())
    direct = build_report(run_dir, ["anchor"], tmp_path / "a.xlsx", measure=False, plots=False)
    via_csv = build_report(run_dir, [str(frozen)], tmp_path / "b.xlsx", measure=False, plots=False)
    label = "anchor (anchor.csv)"
    test = next(s for s in via_csv.summaries if s.codec == "test")
    assert test.foreign_times[label] == test.ratio_pairs[label] > 0
    assert next(s for s in direct.summaries if s.codec == "test").foreign_times["anchor"] == 0
    assert "one encode at the final knob value and one decode" in _summary_text(direct.workbook)
    assert "not from this run" not in _summary_text(direct.workbook)
    assert f"EncT / DecT vs {label}: " in _summary_text(via_csv.workbook)
    assert "not from this run" in _summary_text(via_csv.workbook)


def test_a_report_of_a_run_that_did_not_finish_says_so(run_dir, tmp_path, capsys):
    with Store(run_dir) as store:
        run_id = store.runs()[-1]["id"]
        store.end_run(run_id, "interrupted")
    assert main(["report", str(run_dir), "--no-complexity", "-o", str(tmp_path / "r.xlsx")]) == 0
    err = capsys.readouterr().err
    assert f"ctc: warning: the latest run of this condition (run {run_id}) is interrupted" in err
    assert "finished so far" in _summary_text(tmp_path / "r.xlsx")
