"""Test sets with classes: dataset manifests (ctc.datasets), a run on one, per-class lines in
`ctc results` and per-class BD-rates in the report, checked against ctc.bdrate.bd_dataset on
each class's images alone."""

import os
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from ctc_testing import quiet_bd
from openpyxl import load_workbook
from PIL import Image
from skimage import data as skdata

from ctc import datasets
from ctc.bdrate import bd_dataset
from ctc.cli import main
from ctc.datasets import (
    DatasetError,
    ManifestError,
    class_of,
    load_manifest,
    resolve_dataset,
    write_manifest,
)
from ctc.images import pixel_sha256
from ctc.report import build_report
from ctc.report.data import METRICS, curves
from ctc.results import summarize_classes
from ctc.store import Store

CLASSES = {"A": ["astro", "coffee"], "B": ["cat", "cat2"]}


@pytest.fixture()
def class_folder(tmp_path, crops):
    """Four small photo crops in two classes, and a manifest of them next to the images."""
    folder = tmp_path / "images"
    folder.mkdir()
    pictures = {**crops, "cat2": np.ascontiguousarray(skdata.chelsea()[200:248, 250:314])}
    for name, pixels in pictures.items():
        Image.fromarray(pixels).save(folder / f"{name}.png")
    manifest = write_manifest(
        folder,
        {"A": ["astro.png", "coffee.png"], "B": "cat*.png"},
        tmp_path / "sets" / "mytest.yaml",
        name="mytest",
        source="scikit-image crops (BSD)",
        descriptions={"A": "people and things", "B": "cats"},
    )
    return folder, manifest, pictures


# --- the manifest -----------------------------------------------------------------------------


def test_manifest_round_trip(class_folder):
    folder, manifest, pictures = class_folder
    spec = yaml.safe_load(manifest.read_text())
    assert spec["name"] == "mytest" and spec["root"] == "../images"
    assert spec["classes"]["A"]["images"]["astro.png"] == pixel_sha256(pictures["astro"])

    loaded = load_manifest(manifest)
    assert [c.name for c in loaded.classes] == ["A", "B"]
    assert loaded.root.resolve() == folder.resolve()
    dataset = resolve_dataset(str(manifest))
    assert dataset.name == "mytest"
    assert sorted(i.name for i in dataset.images) == sorted(pictures)
    assert {c.name: sorted(c.images) for c in dataset.classes} == CLASSES
    assert dataset.checksums() == {n: pixel_sha256(p) for n, p in pictures.items()}
    record = dataset.class_record()
    assert record["B"]["description"] == "cats"
    assert datasets.classes_from_record({"classes": record}) == dataset.classes
    assert class_of(dataset.classes, "cat", pixel_sha256(pictures["cat"])) == "B"
    assert class_of(dataset.classes, "cat", "0" * 64) is None  # other pixels: in no class
    assert class_of(dataset.classes, "dog") is None


def _edit(manifest, change):
    spec = yaml.safe_load(manifest.read_text())
    change(spec)
    manifest.write_text(yaml.safe_dump(spec))


def _set(path, value):
    def change(spec):
        *parents, last = path
        node = spec
        for key in parents:
            node = node[key]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value

    return change


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_set(["colour"], "rgb"), "colour: unknown field"),
        (_set(["name"], KeyError), "name: missing"),
        (_set(["name"], ""), "name: must be a non-empty string"),
        (_set(["classes"], {}), "classes: must be a mapping"),
        (_set(["classes", "A", "size"], "6K"), "classes.A.size: unknown field"),
        (_set(["classes", "A", "images"], ["astro.png"]), "classes.A.images: must be a mapping"),
        (_set(["classes", "A", "images", "astro.png"], "abc"), "must be 64 hex digits"),
        (_set(["classes", "A", "images", "x.jpg"], "0" * 64), "not an original image"),
        (_set(["classes", "A", "images", "sub/x.png"], "0" * 64), "no folder part"),
        (_set(["classes", "B", "images", "astro.tif"], "0" * 64),
         "classes.B.images.astro.tif: image name 'astro' is already in class A"),
    ],
)  # fmt: skip
def test_manifest_errors_name_file_and_field(class_folder, change, expected):
    _, manifest, _ = class_folder
    _edit(manifest, change)
    with pytest.raises(ManifestError) as info:
        load_manifest(manifest)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{manifest}: ")
    assert expected in message


@pytest.mark.parametrize("text", ["classes: [unclosed", "- a list\n- of things\n"])
def test_manifest_that_is_not_a_mapping(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError, match=r"bad\.yaml: not") as info:
        resolve_dataset(path)
    assert "\n" not in str(info.value)
    with pytest.raises(ManifestError, match="cannot read"):
        load_manifest(tmp_path / "none.yaml")


def test_manifest_images_checked_all_in_one_error(class_folder, tmp_path, monkeypatch):
    folder, manifest, pictures = class_folder
    (folder / "coffee.png").unlink()
    changed = pictures["cat"].copy()
    changed[0, 0] ^= 1
    Image.fromarray(changed).save(folder / "cat.png")
    (folder / "cat2.png").write_bytes(b"not a png")
    dataset = resolve_dataset(manifest)  # checked when read (a run: before any job)
    with pytest.raises(DatasetError) as info:
        dataset.checksums()
    lines = str(info.value).splitlines()
    assert "3 of 4 images cannot be used" in lines[0] and "mytest" in lines[0]
    assert "scikit-image crops" in lines[0]
    by_file = {Path(line.split(":")[0].strip()).name: line for line in lines[1:]}
    assert sorted(by_file) == ["cat.png", "cat2.png", "coffee.png"] and len(lines) == 4
    assert by_file["coffee.png"] == f"  coffee.png: missing from {folder}"
    assert "pixel sha256 " in by_file["cat.png"] and "not the manifest's" in by_file["cat.png"]

    # The images elsewhere: $CTC_DATASET_ROOT points at them; a missing folder says where.
    copy = tmp_path / "copy"
    copy.mkdir()
    for name, pixels in pictures.items():
        Image.fromarray(pixels).save(copy / f"{name}.png")
    monkeypatch.setenv(datasets.ROOT_ENV, str(copy))
    assert len(resolve_dataset(manifest).checksums()) == 4
    monkeypatch.setenv(datasets.ROOT_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="no image folder .*nowhere.*scikit-image crops"):
        resolve_dataset(manifest)


def test_write_manifest_command(class_folder, tmp_path, capsys):
    folder, _, _ = class_folder
    out = tmp_path / "cli.yaml"
    assert datasets.main(["manifest", str(folder), "--class", "X=a*.png", "--class",
                          "Y=c*.png", "-o", str(out)]) == 0  # fmt: skip
    assert capsys.readouterr().out.strip() == str(out)
    assert {c.name: sorted(c.images) for c in load_manifest(out).classes} == {
        "X": ["astro"], "Y": ["cat", "cat2", "coffee"]
    }  # fmt: skip
    assert datasets.main(["manifest", str(folder), "--class", "X=z*.png", "-o", str(out)]) == 2
    assert "matches no image" in capsys.readouterr().err


# --- a run on a manifest ----------------------------------------------------------------------


@pytest.fixture()
def class_run(tmp_path, class_folder, test_codecs):
    """jpeg against quantzlib on the manifest's four crops, through `ctc run --dataset`."""
    from ctc_testing import write_condition

    _, manifest, _ = class_folder
    condition = write_condition(
        tmp_path, targets_bpp=[1.0, 2.0, 4.0], metrics={"psnr_rgb": {}, "msssim_rgb": {}},
        tolerance={"min_percent": -30, "max_percent": 30, "scope": "per_image"},
    )  # fmt: skip
    out = tmp_path / "out"
    code = main(["run", str(condition), "--codec", "jpeg,quantzlib", "--dataset", str(manifest),
                 "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    return out, manifest


def _numbers(line: str) -> list[str]:
    return re.split(r"\s+", line.strip())


def test_results_prints_lines_per_class(class_run, capsys):
    out, manifest = class_run
    capsys.readouterr()
    assert main(["results", str(out), "--dataset", str(manifest)]) == 0
    text = capsys.readouterr().out
    header = next(line for line in text.splitlines() if " class " in f" {line} ")
    columns = _numbers(header)
    lines = [_numbers(line) for line in text.splitlines() if line.strip().startswith("test ")]
    summary = [cells for cells in lines if len(cells) == len(columns) and "." not in cells[2]]
    got = {(c[1], c[2], float(c[3])): dict(zip(columns, c, strict=True)) for c in summary}
    with Store(out) as store:
        rows = store.results()
    for codec in ("jpeg", "quantzlib"):
        for target in (1.0, 2.0, 4.0):
            for name, images in [
                *CLASSES.items(),
                ("all", [i for v in CLASSES.values() for i in v]),
            ]:
                mine = [r for r in rows if r["codec"] == codec and r["target_bpp"] == target
                        and r["image"] in images]  # fmt: skip
                line = got[(codec, name, target)]
                assert int(line["images"]) == len(images)
                assert float(line["bpp"]) == pytest.approx(
                    np.mean([r["bpp"] for r in mine]), abs=1e-4
                )
    # Order: each codec and target's class lines, then its overall line.
    order = [(c[1], float(c[3]), c[2]) for c in summary]
    assert order[:3] == [("jpeg", 1.0, "A"), ("jpeg", 1.0, "B"), ("jpeg", 1.0, "all")]
    # Without the manifest: the classes the run recorded.
    assert main(["results", str(out)]) == 0
    assert capsys.readouterr().out == text


def test_run_refuses_a_manifest_with_other_pixels(class_folder, tmp_path, test_codecs, capsys):
    from ctc_testing import write_condition

    folder, manifest, pictures = class_folder
    Image.fromarray(255 - pictures["astro"]).save(folder / "astro.png")
    condition = write_condition(tmp_path, targets_bpp=[1.0])
    code = main(["run", str(condition), "--codec", "jpeg", "--dataset", str(manifest),
                 "--out", str(tmp_path / "o"), "--no-progress"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "1 of 4 images cannot be used" in err and "astro.png: pixel sha256" in err
    with Store(tmp_path / "o") as store:
        assert store.results() == [] and store.runs() == []  # refused before any job


def test_results_dataset_option_errors(class_run, tmp_path, capsys):
    out, _ = class_run
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    assert main(["results", str(out), "--dataset", str(bad)]) == 2
    assert "bad.yaml: classes: must be a mapping" in capsys.readouterr().err


def test_report_bd_per_class_is_bd_of_the_class_alone(class_run, tmp_path):
    out, manifest = class_run
    with quiet_bd():
        report = build_report(out, ["jpeg"], tmp_path / "r.xlsx", measure=False, plots=False,
                              dataset=manifest)  # fmt: skip
    with Store(out) as store:
        rows = store.results()
    by_codec = {c: [r for r in rows if r["codec"] == c] for c in ("jpeg", "quantzlib")}
    names = [(i.class_name, i.row.metric.column) for i in report.class_bd]
    assert names == [(c, m) for c in ("A", "B", "all") for m in ("psnr_rgb", "msssim_rgb")]
    overall = {r.metric.column: r for r in report.bd}
    wb = load_workbook(tmp_path / "r.xlsx")
    ws = wb["BD per class"]
    header = {c.value: c.column for c in ws[1]}
    assert wb.sheetnames.index("BD per class") == wb.sheetnames.index("BD per image") + 1
    for n, item in enumerate(report.class_bd, start=2):
        metric = next(m for m in METRICS if m.column == item.row.metric.column)
        if item.image_class is None:
            assert item.row is overall[metric.column]
            images = None
        else:
            images = set(item.image_class.images)
        anchor = {i: c for i, c in curves(by_codec["jpeg"], metric).items()
                  if images is None or i in images}  # fmt: skip
        test = {i: c for i, c in curves(by_codec["quantzlib"], metric).items()
                if images is None or i in images}  # fmt: skip
        with quiet_bd():
            expected = bd_dataset(anchor, test, bpp_range="all", msssim_linear=metric.msssim)
        cell = item.row.cells["all"]
        assert cell.images == len(anchor)
        assert cell.per_image_mean == pytest.approx(expected.per_image_mean)
        assert cell.average_curve == pytest.approx(expected.average_curve.value)
        assert ws.cell(n, 1).value == item.class_name
        assert ws.cell(n, header["Images"]).value == len(anchor)
        got = ws.cell(n, header["BD-rate per-image mean, all points (%)"]).value
        assert got == pytest.approx(expected.per_image_mean)
        got = ws.cell(n, header["BD-rate average curve, all points (%)"]).value
        assert got == pytest.approx(expected.average_curve.value)
    # A class BD-rate differs from the overall one: the classes are reported on their own.
    a = report.class_bd[0].row.cells["all"].per_image_mean
    assert a != pytest.approx(overall["psnr_rgb"].cells["all"].per_image_mean)


def test_report_without_classes_has_no_class_sheet(class_folder, tmp_path, test_codecs):
    from ctc_testing import write_condition

    folder, _, _ = class_folder  # the same images as a plain folder: no classes
    condition = write_condition(tmp_path, targets_bpp=[1.0, 2.0], metrics={"psnr_rgb": {}})
    out = tmp_path / "plain"
    code = main(["run", str(condition), "--codec", "jpeg,quantzlib", "--dataset", str(folder),
                 "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    with quiet_bd():
        report = build_report(out, ["jpeg"], tmp_path / "r.xlsx", measure=False, plots=False)
    assert report.class_bd == []
    assert "BD per class" not in load_workbook(tmp_path / "r.xlsx").sheetnames


def test_recorded_classes_are_used_without_the_manifest(class_run, tmp_path, capsys):
    """A run record whose dataset entry holds the classes (Dataset.class_record) gives the class
    lines and sheet with no --dataset; images of other pixels are in no class."""
    out, manifest = class_run
    classes = resolve_dataset(manifest).class_record()
    classes["B"]["images"]["cat2"] = "0" * 64  # as if the run had other pixels for cat2
    with Store(out) as store:
        run = store.runs()[-1]
        record = {**run["record"], "dataset": {**run["record"]["dataset"], "classes": classes}}
        later = store.begin_run(run["condition"], run["condition_hash"], record)
        store.end_run(later, "finished")
    capsys.readouterr()
    assert main(["results", str(out)]) == 0
    text = capsys.readouterr().out
    assert "in no class (only in 'all'): cat2" in text
    with quiet_bd():
        report = build_report(out, ["jpeg"], tmp_path / "r.xlsx", measure=False, plots=False)
    b = next(i for i in report.class_bd if i.class_name == "B")
    assert b.row.cells["all"].images == 1
    assert any("cat2" in note for note in report.data.notes)


def test_summarize_classes_unit():
    row = {"condition": "c", "codec": "x", "codec_version": "1", "condition_hash": "h",
           "in_tolerance": 1, "sse_rgb": None, "n_values": 1}  # fmt: skip
    rows = [{**row, "image": i, "image_sha256": "s", "target_bpp": 1.0, "bpp": b}
            for i, b in (("a", 1.0), ("b", 3.0), ("z", 5.0))]  # fmt: skip
    classes = (datasets.ImageClass("P", "", {"a": ""}), datasets.ImageClass("Q", "", {"b": "s"}))
    lines = summarize_classes(rows, {}, classes)
    assert [(ln["class"], ln["images"], ln["bpp"]) for ln in lines] == [
        ("P", 1, 1.0), ("Q", 1, 3.0), ("all", 3, 3.0)
    ]  # fmt: skip


def test_a_run_on_a_manifest_records_its_classes_for_results_and_reports(class_run, tmp_path):
    out, _ = class_run
    with Store(out) as store:
        recorded = store.runs()[-1]["record"]["dataset"]["classes"]
    assert set(recorded) == set(CLASSES)
    code = main(["report", str(out), "--anchor", "jpeg", "--no-complexity", "-o",
                 str(tmp_path / "r.xlsx")])  # fmt: skip
    assert code == 0
    assert "BD per class" in load_workbook(tmp_path / "r.xlsx").sheetnames


def test_a_class_written_twice_is_an_error_not_silently_the_last(tmp_path):
    path = tmp_path / "twice.yaml"
    zeros = "0" * 64
    path.write_text(
        f"name: t\nclasses:\n  A: {{images: {{a.png: '{zeros}'}}}}\n"
        f"  A: {{images: {{b.png: '{zeros}'}}}}\n"
    )
    with pytest.raises(DatasetError, match="duplicate key 'A'"):
        resolve_dataset(path)


def test_a_manifest_that_is_a_fifo_or_too_large_is_refused_without_reading_it(tmp_path):
    from ctc.yamlfile import MAX_BYTES

    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # nobody writes: reading it would block forever
    with pytest.raises(DatasetError, match="fifo.yaml: not a regular file of at most 4 MiB"):
        resolve_dataset(fifo)
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as f:
        f.truncate(MAX_BYTES + 1)  # sparse: no memory or disk spent
    with pytest.raises(DatasetError, match="huge.yaml: not a regular file of at most 4 MiB"):
        resolve_dataset(huge)
