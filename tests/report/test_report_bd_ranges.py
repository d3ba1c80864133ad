"""BD-rate ranges per test condition: a report computes and labels its BD-rates over the
reported condition's bd_ranges (from its run record), then all points; a record without them
(a run made before the field existed, or a condition that declares none) gets all points only.
Synthetic stores, read back from the workbook and from `ctc report`'s printed table."""

import math
import re

import pytest
from openpyxl import load_workbook

from ctc.bdrate import bd_dataset
from ctc.cli import main
from ctc.condition import load_condition
from ctc.report import build_report
from ctc.report.data import ALL_POINTS, BDRange, bd_ranges
from ctc.store import Store

TARGETS = [0.06, 0.12, 0.25, 0.5, 1.0, 1.5]
IMAGES = {"img_a": 1.0, "img_b": 2.0, "img_c": 0.7}  # rate scale of each image
SAVING = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]  # test rate / anchor rate at each target: BD-rates
# differ from one range to another
HASH = "ba5e" * 16
MID_HIGH = {"mid": [0.2, 0.8], "high": [0.5, 1.5]}  # sorted keys would give high, then mid


def _row(codec: str, image: str, target: float, bpp: float, psnr: float, run_id: int) -> dict:
    return {
        "codec": codec, "codec_version": f"{codec} 1.0", "image": image,
        "image_sha256": f"sha-{image}", "target_bpp": target, "condition_hash": HASH,
        "condition": "unit", "width": 64, "height": 48, "knob_name": "q",
        "knob_value": round(100 * bpp, 3), "rate_control": "search", "n_encodes": 4,
        "bytes": int(bpp * 64 * 48 / 8), "bpp": bpp, "deviation_percent": 100 * (bpp / target - 1),
        "in_tolerance": int(abs(bpp / target - 1) <= 0.05), "psnr_rgb": psnr, "sse_rgb": 1000,
        "n_values": 9216, "encode_seconds": 0.01, "decode_seconds": 0.02,
        "rate_control_seconds": 0.1, "bitstream": f"b/{codec}/{image}/{target}.bin",
        "run_id": run_id, "finished_at": "2026-01-01T00:00:00+00:00",
    }  # fmt: skip


def _write_store(folder, condition: dict) -> None:
    """An anchor and a test codec on three images of two classes, under `condition` (the run
    record's condition dict); the test saves more bits the higher the rate."""
    classes = {
        "A": {"description": "first", "images": {"img_a": "sha-img_a", "img_b": "sha-img_b"}},
        "B": {"description": "second", "images": {"img_c": "sha-img_c"}},
    }
    record = {
        "condition": condition, "condition_hash": HASH,
        "dataset": {"name": "unit", "classes": classes},
        "codecs": {"anchor": "anchor 1.0", "test": "test 1.0"},
        "ctc_version": "0.1.0", "python": "3.11", "platform": "unit", "machine": "x",
        "cpu_count": 2, "jobs": 1,
    }  # fmt: skip
    with Store(folder) as store:
        run_id = store.begin_run("unit", HASH, record)
        for image, scale in IMAGES.items():
            for n, target in enumerate(TARGETS):
                bpp = target * scale * (1.02 if n % 2 else 0.98)
                psnr = 24 + 8 * math.log10(bpp / 0.06) + n * 0.1
                store.add_result(_row("anchor", image, target, bpp, psnr, run_id))
                store.add_result(_row("test", image, target, bpp * SAVING[n], psnr, run_id))
        store.end_run(run_id, "finished")


def _unit(**extra) -> dict:
    return {"name": "unit", "targets_bpp": TARGETS, "anchors": ["anchor"], **extra}


def _report(tmp_path, condition: dict):
    _write_store(tmp_path / "run", condition)
    report = build_report(tmp_path / "run", ["anchor"], tmp_path / "unit.xlsx", measure=False)
    return report, load_workbook(report.workbook)


def _store_curves(run) -> dict[str, dict[str, tuple[list, list, list]]]:
    """Per codec and image: (bpp, PSNR RGB, target bpp), read back from the store."""
    out: dict[str, dict[str, tuple[list, list, list]]] = {"anchor": {}, "test": {}}
    with Store(run) as store:
        for r in store.results():
            curve = out[r["codec"]].setdefault(r["image"], ([], [], []))
            for values, key in zip(curve, ("bpp", "psnr_rgb", "target_bpp"), strict=True):
                values.append(r[key])
    return out


def _row_of(ws, first_row: int, **wanted) -> list:
    """The values of the first row at or below first_row whose cells match `wanted` (header
    text -> value), with the header taken from row first_row - 1."""
    header = {c.value: c.column for c in ws[first_row - 1] if c.value}
    for row in ws.iter_rows(min_row=first_row):
        if all(row[header[k] - 1].value == v for k, v in wanted.items()):
            return [c.value for c in row]
    raise AssertionError(f"no row with {wanted}")


def _printed_table(run, out, capsys) -> tuple[str, list[str], list[str]]:
    """`ctc report`'s BD table: the range titles line, the column names, the body lines."""
    assert main(["report", str(run), "--anchor", "anchor", "-o", str(out), "--no-complexity"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("codec vs anchor"))
    return lines[header - 1], lines[header].split(), lines[header + 2 :]


def test_bd_ranges_are_the_conditions_from_the_lowest_bpp_then_all_points():
    ranges = bd_ranges({"bd_ranges": {"b": [0.5, 2.0], "a": [0.1, 1.0]}})
    assert ranges == (BDRange("a", 0.1, 1.0), BDRange("b", 0.5, 2.0), ALL_POINTS)
    assert [r.label for r in ranges] == ["a: 0.1–1 bpp", "b: 0.5–2 bpp", "all points"]
    assert ALL_POINTS.bounds == (0.0, math.inf)
    for without in ({}, {"bd_ranges": {}}, {"bd_ranges": None}):
        assert bd_ranges(without) == (ALL_POINTS,)


def test_a_conditions_own_ranges_are_the_reports_ranges(tmp_path, capsys):
    report, wb = _report(tmp_path, _unit(bd_ranges=MID_HIGH))
    labels = ["mid: 0.2–0.8 bpp", "high: 0.5–1.5 bpp", "all points"]
    assert [r.label for r in report.data.bd_ranges] == labels
    assert all(list(row.cells) == ["mid", "high", "all"] for row in report.bd)

    # Summary: each range over its two BD-rate columns, then the flags and the note.
    ws = wb["Summary"]
    assert [ws.cell(4, c).value for c in (5, 7, 9, 11, 12, 13)] == [
        *labels, "Outliers |BD| > 100 % (images)", "Overlap < 75 % (images)", "Note",
    ]  # fmt: skip
    assert ws.max_column == 13
    row = next(r for r in range(6, 8) if ws.cell(r, 3).value == "PSNR RGB")
    curves = _store_curves(tmp_path / "run")
    values = {}
    for column, bounds in ((5, (0.2, 0.8)), (7, (0.5, 1.5)), (9, "all")):
        expected = bd_dataset(curves["anchor"], curves["test"], bpp_range=bounds)
        assert ws.cell(row, column).value == pytest.approx(expected.per_image_mean, rel=1e-12)
        assert ws.cell(row, column + 1).value == pytest.approx(expected.average_curve.value)
        values[column] = ws.cell(row, column).value
    assert len({round(v, 6) for v in values.values()}) == 3  # each range its own BD-rate

    # BD per image, BD per class and the run information name the same ranges.
    headers = [c.value for c in wb["BD per image"][1]]
    assert headers[4:] == [f"BD-rate, {label} (%)" for label in labels] + [
        "Outlier |BD| > 100 %", "Overlap < 75 %",
    ]  # fmt: skip
    per_class = [c.value for c in wb["BD per class"][1]]
    assert per_class[6:] == (
        [f"BD-rate per-image mean, {label} (%)" for label in labels]
        + [f"BD-rate average curve, {label} (%)" for label in labels]
        + ["Notes"]
    )
    line = _row_of(wb["BD per class"], 2, Class="B", Metric="PSNR RGB")
    c_only = {i: c for i, c in curves["test"].items() if i == "img_c"}
    expected = bd_dataset({"img_c": curves["anchor"]["img_c"]}, c_only, bpp_range=(0.5, 1.5))
    assert line[7] == pytest.approx(expected.per_image_mean, rel=1e-12)
    conditions = dict((r[0].value, r[1].value) for r in wb["Conditions"].iter_rows())
    assert conditions["BD ranges"] == "; ".join(labels)

    # The printed table: the same three ranges, each over its two columns.
    groups, head, body = _printed_table(tmp_path / "run", tmp_path / "cli.xlsx", capsys)
    assert head == ["codec", "vs", "anchor", "metric"] + ["per-image", "curve"] * 3
    assert [t for t in labels if t in groups] == labels and "low" not in groups
    psnr = next(line for line in body if "PSNR RGB" in line)
    printed = [float(v) for v in re.findall(r"[+-]\d+\.\d\d", psnr)]
    assert printed[::2] == [pytest.approx(values[c], abs=0.005) for c in (5, 7, 9)]


@pytest.mark.parametrize("condition", [_unit(), _unit(bd_ranges={})], ids=["old record", "none"])
def test_a_condition_without_ranges_is_reported_over_all_points_only(tmp_path, capsys, condition):
    report, wb = _report(tmp_path, condition)
    assert report.data.bd_ranges == (ALL_POINTS,)
    assert all(list(row.cells) == ["all"] for row in report.bd)
    assert all(list(item.row.cells) == ["all"] for item in report.class_bd)
    ws = wb["Summary"]
    assert [ws.cell(4, c).value for c in range(5, 10)] == [
        "all points", None, "Outliers |BD| > 100 % (images)", "Overlap < 75 % (images)", "Note",
    ]  # fmt: skip
    assert [c.value for c in wb["BD per image"][1]][4:] == [
        "BD-rate, all points (%)", "Outlier |BD| > 100 %", "Overlap < 75 %",
    ]  # fmt: skip
    assert [c.value for c in wb["BD per class"][1]][6:] == [
        "BD-rate per-image mean, all points (%)", "BD-rate average curve, all points (%)", "Notes",
    ]  # fmt: skip
    conditions = dict((r[0].value, r[1].value) for r in wb["Conditions"].iter_rows())
    assert conditions["BD ranges"] == "all points"
    groups, head, _ = _printed_table(tmp_path / "run", tmp_path / "cli.xlsx", capsys)
    assert head == ["codec", "vs", "anchor", "metric", "per-image", "curve"]
    assert groups.split() == ["all", "points"]


def test_fvc_reports_its_low_and_high_ranges(tmp_path, capsys):
    fvc = load_condition("fvc").to_dict()  # as the runner records it (JSON, sorted keys)
    report, wb = _report(tmp_path, fvc)
    labels = ["low: 0.06–0.5 bpp", "high: 0.25–1.5 bpp", "all points"]
    assert [r.label for r in report.data.bd_ranges] == labels
    ws = wb["Summary"]
    assert [ws.cell(4, c).value for c in (5, 7, 9)] == labels
    curves = _store_curves(tmp_path / "run")
    row = next(r for r in range(6, 8) if ws.cell(r, 3).value == "PSNR RGB")
    low = bd_dataset(curves["anchor"], curves["test"], bpp_range="low")  # FVC's named range
    assert ws.cell(row, 5).value == pytest.approx(low.per_image_mean, rel=1e-12)
    groups, head, _ = _printed_table(tmp_path / "run", tmp_path / "cli.xlsx", capsys)
    assert [t for t in labels if t in groups] == labels
    assert head.count("per-image") == 3
