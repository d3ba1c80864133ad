import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from anchors_testing import install_frozen_jpeg
from PIL import Image
from skimage import data as skdata

from anchors.freeze import freeze, freeze_run
from ctc.frozen import frozen_rows, is_frozen
from ctc.runner import run

FIELDS = ("image", "target_bpp", "knob_value", "n_encodes", "bytes", "bpp", "in_tolerance",
          "psnr_rgb", "psnr_yuv", "msssim_rgb", "codec_version", "condition_hash")  # fmt: skip


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    install_frozen_jpeg(tmp_path / "dist")
    monkeypatch.syspath_prepend(str(tmp_path / "dist"))
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    images = tmp_path / "crops"
    images.mkdir()
    Image.fromarray(skdata.coffee()[100:164, 200:296]).save(images / "coffee.png")
    Image.fromarray(skdata.chelsea()[80:131, 150:217]).save(images / "cat.png")
    spec = {
        "name": "frozentest", "targets_bpp": [1.0, 2.0],
        "tolerance": {"min_percent": -15, "max_percent": 15, "scope": "per_image"},
        "colour": {"matrix": "bt709", "range": "full", "bit_depth": 8},
        "metrics": {"psnr_rgb": {}, "psnr_yuv": {}, "msssim_rgb": {}},
        "anchors": ["frozenjpeg"], "dataset": str(images), "output": str(tmp_path / "out"),
    }  # fmt: skip
    condition = tmp_path / "frozentest.yaml"
    condition.write_text(yaml.safe_dump(spec))
    results = tmp_path / "results"
    freeze("frozenjpeg", str(images), results / "crops", tmp_path / "cache", [str(condition)],
           [30, 70])  # fmt: skip
    monkeypatch.setenv("CTC_TEST_FROZEN", str(results))
    return condition, images, results, tmp_path


def rows_of(summary):
    return sorted(tuple(r[f] for f in FIELDS) for r in summary.rows)


def test_freeze_writes_fixed_and_target_rows_and_a_manifest(setup):
    condition, images, results, _ = setup
    with open(results / "crops" / "frozenjpeg.csv") as f:
        rows = list(csv.DictReader(f))
    fixed = [r for r in rows if r["condition"] == "fixed_qp"]
    assert len(rows) == 8 and len(fixed) == 4 and all(r["target_bpp"] == "" for r in fixed)
    assert {r["knob_value"] for r in fixed} == {"30.0", "70.0"}
    assert all(float(r["encode_seconds"]) > 0 for r in rows)
    manifest = json.loads((results / "crops" / "manifest.json").read_text())
    assert set(manifest["pixel_sha256"]) == {"cat", "coffee"}
    entry = manifest["anchors"]["frozenjpeg"]
    assert entry["rows"] == 8 and entry["conditions"]["frozentest"]["targets_bpp"] == [1.0, 2.0]


def test_a_run_uses_matching_frozen_rows_and_they_equal_real_encodes(setup):
    condition, images, results, tmp = setup
    frozen = run(condition, codecs=["frozenjpeg"], dataset=images, out=tmp / "a", progress=False)
    assert (frozen.total, frozen.frozen, frozen.done, frozen.failures) == (4, 4, 0, [])
    assert all(is_frozen(r) and r["bitstream"] == "frozen:crops/frozenjpeg.csv"
               for r in frozen.rows)  # fmt: skip
    real = run(condition, codecs=["frozenjpeg"], dataset=images, out=tmp / "b", progress=False,
               frozen=False)  # fmt: skip
    assert real.done == 4 and not any(is_frozen(r) for r in real.rows)
    assert rows_of(frozen) == rows_of(real)
    again = run(condition, codecs=["frozenjpeg"], dataset=images, out=tmp / "a", progress=False)
    assert [r["finished_at"] for r in again.rows] == [r["finished_at"] for r in frozen.rows]
    # rows encoded for real are kept even when frozen rows would match
    mixed = run(condition, codecs=["frozenjpeg"], dataset=images, out=tmp / "b", progress=False)
    assert mixed.frozen == 0 and mixed.skipped == 4


def test_a_codec_that_cannot_encode_here_runs_its_frozen_jobs_and_leaves_out_the_rest(
    setup, monkeypatch
):
    condition, images, results, tmp = setup
    Image.fromarray(skdata.astronaut()[:40, :56]).save(images / "face.png")  # not frozen
    monkeypatch.setenv("CTC_TEST_UNAVAILABLE", "frozenjpeg: not installed here")
    summary = run(condition, dataset=images, out=tmp / "u", progress=False)
    assert (summary.total, summary.frozen, summary.done, summary.failures) == (4, 4, 0, [])
    assert summary.codec_errors == {
        "frozenjpeg": "frozenjpeg: not installed here; 2 of its jobs have no frozen result"
    }
    assert {r["image"] for r in summary.rows} == {"cat", "coffee"}
    cli = [sys.executable, "-m", "ctc.cli", "run", str(condition), "--dataset", str(images),
           "--no-progress"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    as_anchor = subprocess.run([*cli, "--out", str(tmp / "v")], capture_output=True, text=True,
                               env=env)  # fmt: skip
    assert as_anchor.returncode == 0, as_anchor.stderr
    assert "not installed here; 2 of its jobs have no frozen result; skipped" in as_anchor.stderr
    named = subprocess.run([*cli, "--out", str(tmp / "w"), "--codec", "frozenjpeg"],
                           capture_output=True, text=True, env=env)  # fmt: skip
    assert named.returncode != 0 and "no frozen result" in named.stderr
    monkeypatch.delenv("CTC_TEST_UNAVAILABLE")
    summary = run(condition, dataset=images, out=tmp / "u", progress=False)
    assert (summary.total, summary.done, summary.codec_errors) == (6, 2, {})


def test_frozen_rows_are_ignored_when_version_or_pixels_differ(setup):
    condition, images, results, tmp = setup
    path = results / "crops" / "manifest.json"
    manifest = json.loads(path.read_text())
    version = manifest["anchors"]["frozenjpeg"]["version"]
    assert len(frozen_rows("frozenjpeg", version, results)) == 4
    assert frozen_rows("frozenjpeg", version + " (other)", results) == {}
    manifest["pixel_sha256"]["cat"] = "0" * 64
    path.write_text(json.dumps(manifest))
    summary = run(condition, codecs=["frozenjpeg"], dataset=images, out=tmp / "c", progress=False)
    assert (summary.frozen, summary.done) == (2, 2)
    assert {r["image"] for r in summary.rows if is_frozen(r)} == {"coffee"}
    manifest["anchors"]["frozenjpeg"]["version"] = "another build"
    path.write_text(json.dumps(manifest))
    summary = run(condition, codecs=["frozenjpeg"], dataset=images, out=tmp / "d", progress=False)
    assert (summary.frozen, summary.done) == (0, 4)


def test_shipped_kodak_results_are_those_of_the_default_anchors():
    """Every anchor that a bundled Kodak condition lists and that has frozen results is frozen
    under that condition's current hash, at its version here, for all 24 images: so `ctc run
    CONDITION` on Kodak encodes only the codecs. The CLIC conditions' sweeps are not frozen
    (docs/clic.md): their anchor encodes like any codec."""
    from ctc.condition import bundled, load_condition
    from ctc.fetch import KODAK
    from ctc.registry import load_codec

    folder = Path(__file__).resolve().parents[2] / "anchors/results/kodak"
    manifest = json.loads((folder / "manifest.json").read_text())
    pins = {name.removesuffix(".png"): pin[2] for name, pin in KODAK.files.items()}
    assert manifest["pixel_sha256"] == pins
    conditions = [load_condition(n) for n in bundled()]
    frozen_anchors = set()
    for cond in (c for c in conditions if c.dataset == "kodak" and c.clic is None):
        for name in cond.anchors:
            codec = load_codec(name)
            if not getattr(codec, "frozen_results", None):
                continue
            frozen_anchors.add(name)
            entry = manifest["anchors"][name]
            assert entry["version"] == codec.version() and entry["missing_images"] == []
            assert entry["conditions"][cond.name]["hash"] == cond.hash, (name, cond.name)
    assert frozen_anchors >= {"bpg", "vtm", "vvc"}
    for name in frozen_anchors:
        entry = manifest["anchors"][name]
        targets = sum(len(c["targets_bpp"]) for c in entry["conditions"].values())
        expected = 24 * (len(entry["fixed_qps"]) + targets)
        assert entry["rows"] == expected
        assert len(frozen_rows(name, entry["version"], folder.parent)) == 24 * targets


def test_freeze_run_freezes_a_finished_run_and_refuses_an_incomplete_one(setup, tmp_path):
    condition, images, results, tmp = setup
    done = run(condition, codecs=["frozenjpeg"], dataset=images, out=tmp / "r", progress=False,
               frozen=False)  # fmt: skip
    path = freeze_run("frozenjpeg", [tmp / "r"], str(images), tmp_path / "again" / "crops")
    with open(path) as f:
        frozen = list(csv.DictReader(f))
    assert len(frozen) == done.total == 4
    assert {(r["image"], float(r["target_bpp"]), int(r["bytes"])) for r in frozen} == {
        (r["image"], r["target_bpp"], r["bytes"]) for r in done.rows
    }
    entry = json.loads((path.parent / "manifest.json").read_text())["anchors"]["frozenjpeg"]
    assert entry["rows"] == 4 and entry["fixed_qps"] == []
    Image.fromarray(skdata.astronaut()[:40, :56]).save(images / "face.png")
    with pytest.raises(SystemExit, match="2 of frozenjpeg's 6 frozentest rows are missing"):
        freeze_run("frozenjpeg", [tmp / "r"], str(images), tmp_path / "third")


def test_nic_ref_is_frozen_on_kodak_under_the_bundled_conditions_at_this_version():
    """nic-ref's frozen rows stand in only at nic's version and model: a release that changes
    either must freeze them again (docs/contributing-a-tool.md)."""
    from ctc.condition import load_condition
    from nic.ctc_codec import NicReference

    codec = NicReference()
    folder = Path(codec.frozen_results) / "kodak"
    entry = json.loads((folder / "manifest.json").read_text())["anchors"]["nic-ref"]
    assert entry["version"] == codec.version() and entry["missing_images"] == []
    for name in ("fvc", "jpeg_ai_ctc"):
        cond = load_condition(name)
        assert entry["conditions"][name]["hash"] == cond.hash
    rows = frozen_rows("nic-ref", entry["version"], folder.parent)
    assert len(rows) == entry["rows"] == 24 * (6 + 5)


def _freeze_main(capsys, *args: str) -> tuple[int, str, str]:
    """`python -m anchors.freeze ARGS` in this process: (exit status, stdout, stderr)."""
    from anchors.freeze import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("python -m anchors.freeze: error: "), err
    return err.removeprefix("python -m anchors.freeze: error: ").rstrip("\n")


def test_freeze_an_unknown_codec_is_one_line_and_exit_2(setup, capsys):
    condition, images, results, tmp = setup
    for more in ([], ["--from-run", str(tmp)]):
        code, out, err = _freeze_main(capsys, "--codec", "nosuch", "--dataset", str(images),
                                      "--out", str(tmp / "o"), *more)  # fmt: skip
        assert (code, out) == (2, "")
        assert _one_error_line(err).startswith("unknown codec 'nosuch' (registered: ")
    assert not (tmp / "o").exists()


def test_freeze_from_run_refuses_what_is_not_a_run_folder_and_creates_no_store(setup, capsys):
    condition, images, results, tmp = setup
    a_file, empty, not_a_store = tmp / "a-file", tmp / "empty", tmp / "not-a-store"
    a_file.write_text("x")
    empty.mkdir()
    not_a_store.mkdir()
    (not_a_store / "results.sqlite").write_bytes(b"not a database, " * 100)
    expected = {
        a_file: f"--from-run {a_file}: not a `ctc run` folder (a file)",
        tmp / "missing": f"--from-run {tmp / 'missing'}: not a `ctc run` folder (missing)",
        empty: f"--from-run {empty}: not a `ctc run` folder (no results.sqlite)",
        not_a_store: f"--from-run {not_a_store}: not a `ctc run` folder ({not_a_store}",
    }
    for folder, message in expected.items():
        args = ["--dataset", str(images), "--out", str(tmp / "o"), "--from-run", str(folder)]
        code, out, err = _freeze_main(capsys, "--codec", "frozenjpeg", *args)
        assert (code, out) == (2, "")
        assert _one_error_line(err).startswith(message)
    assert list(empty.iterdir()) == [] and not (tmp / "missing").exists()
    assert (not_a_store / "results.sqlite").read_bytes() == b"not a database, " * 100
    assert not (tmp / "o").exists()


def test_freeze_from_run_never_duplicates_a_condition(setup, tmp_path, capsys):
    condition, images, results, tmp = setup
    run(condition, codecs=["frozenjpeg"], dataset=images, out=tmp / "r", progress=False,
        frozen=False)  # fmt: skip
    copy = tmp / "copy"
    shutil.copytree(tmp / "r", copy)
    for folders, again in (([tmp / "r", tmp / "r"], "given twice"),
                           ([tmp / "r", copy], "in two folders")):  # fmt: skip
        with pytest.raises(SystemExit) as e:
            freeze_run("frozenjpeg", folders, str(images), tmp_path / "dup")
        message = str(e.value.code)
        assert message.startswith("condition frozentest (") and f") is {again}: " in message
        assert "\n" not in message and not (tmp_path / "dup").exists()
        args = [a for f in folders for a in ("--from-run", str(f))]
        code, out, err = _freeze_main(capsys, "--codec", "frozenjpeg", "--dataset", str(images),
                                      "--out", str(tmp_path / "dup"), *args)  # fmt: skip
        assert (code, out) == (2, "") and _one_error_line(err) == message


def test_freeze_from_run_names_both_versions_when_they_differ(setup, tmp_path, capsys):
    condition, images, results, tmp = setup
    run(condition, codecs=["frozenjpeg"], dataset=images, out=tmp / "r", progress=False,
        frozen=False)  # fmt: skip
    with sqlite3.connect(tmp / "r" / "results.sqlite") as db:  # as if made by another build
        db.execute("UPDATE results SET codec_version = 'an older build'")
    db.close()
    from ctc.registry import load_codec

    here = load_codec("frozenjpeg").version()
    args = ["--dataset", str(images), "--out", str(tmp_path / "v"), "--from-run", str(tmp / "r")]
    code, out, err = _freeze_main(capsys, "--codec", "frozenjpeg", *args)
    assert (code, out) == (2, "")
    assert _one_error_line(err) == (
        f"{tmp / 'r'}: frozenjpeg's frozentest rows are of version 'an older build'; "
        f"frozenjpeg here is {here!r}"
    )
    assert "missing" not in err and not (tmp_path / "v").exists()


@pytest.mark.parametrize(
    "extra", [["--conditions", "fvc"], ["--fixed-qps", "30"], ["--minutes", "5"],
              ["--conditions", "fvc", "--minutes", "5"]],
)  # fmt: skip
def test_freeze_options_that_do_not_apply_to_from_run_are_a_usage_error(setup, capsys, extra):
    condition, images, results, tmp = setup
    args = ["--dataset", str(images), "--out", str(tmp / "o"), "--from-run", str(tmp), *extra]
    code, out, err = _freeze_main(capsys, "--codec", "frozenjpeg", *args)
    assert (code, out) == (2, "")
    options = ", ".join(a for a in extra if a.startswith("--"))
    assert _one_error_line(err).startswith(f"{options} do")
    assert "not apply with --from-run" in err and not (tmp / "o").exists()


def test_freeze_from_run_of_a_module_class_spec_is_found_by_a_run_of_that_spec(
    setup, tmp_path, monkeypatch
):
    """The rows of a MODULE:CLASS codec carry its spec; the manifest names the codec by it, so
    that `ctc run` (ctc.frozen, which looks frozen rows up by the job's codec spec) answers the
    spec's jobs from them."""
    condition, images, results, tmp = setup
    spec = "anchors_testing:FrozenJpeg"  # the class of frozenjpeg, not by its registered name
    done = run(condition, codecs=[spec], dataset=images, out=tmp / "m", progress=False,
               frozen=False)  # fmt: skip
    assert done.done == 4 and {r["codec"] for r in done.rows} == {spec}
    frozen = tmp_path / "frozen"
    path = freeze_run(spec, [tmp / "m"], str(images), frozen / "crops")
    assert path == frozen / "crops" / "anchors_testing_FrozenJpeg.csv"
    entry = json.loads((frozen / "crops" / "manifest.json").read_text())["anchors"][spec]
    assert entry["file"] == path.name and entry["rows"] == 4
    monkeypatch.setenv("CTC_TEST_FROZEN", str(frozen))
    again = run(condition, codecs=[spec], dataset=images, out=tmp / "n", progress=False)
    assert (again.total, again.frozen, again.done, again.failures) == (4, 4, 0, [])
    assert all(r["bitstream"] == f"frozen:crops/{path.name}" for r in again.rows)
    assert rows_of(again) == rows_of(done)


def test_cpu_time_freezes_time_encodes_in_cpu_seconds_and_re_encode_entries_without(setup):
    condition, images, results, tmp = setup
    # the setup's freeze cached wall and CPU seconds; an entry with wall seconds only is redone
    folder = next((tmp / "cache").glob("frozenjpeg-*"))
    old = next(folder.glob("*/qp30.json"))
    old.write_text(json.dumps({k: v for k, v in json.loads(old.read_text()).items()
                               if k != "cpu_seconds"}))  # fmt: skip
    path = freeze("frozenjpeg", str(images), tmp / "cpu", tmp / "cache", [str(condition)], [30],
                  cpu_time=True)  # fmt: skip
    assert "cpu_seconds" in json.loads(old.read_text())
    entry = json.loads((path.parent / "manifest.json").read_text())["anchors"]["frozenjpeg"]
    assert entry["timing"] == "cpu"
    with open(path) as f:
        assert all(float(r["encode_seconds"]) > 0 for r in csv.DictReader(f))


@pytest.mark.parametrize(
    "option, value", [("--minutes", "-1"), ("--minutes", "nan"), ("--minutes", "inf"),
                      ("--minutes", "soon"), ("--fixed-qps", "22 x")],
)  # fmt: skip
def test_freeze_refuses_bad_minutes_and_qps_before_any_work(setup, capsys, option, value):
    condition, images, results, tmp = setup
    with pytest.raises(SystemExit) as stop:
        _freeze_main(capsys, "--codec", "frozenjpeg", "--dataset", str(images), "--out",
                     str(tmp / "o"), "--conditions", str(condition), option, value)  # fmt: skip
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err
    assert f"argument {option}: expected " in err.splitlines()[-1]
    assert not (tmp / "o").exists()


def test_freeze_minutes_0_starts_no_image_and_writes_what_is_done(setup, capsys):
    """--minutes 0: the images already frozen with this cache are written, no other is begun."""
    condition, images, results, tmp = setup
    args = ["--codec", "frozenjpeg", "--dataset", str(images), "--conditions", str(condition),
            "--fixed-qps", "30,70", "--minutes", "0"]  # fmt: skip
    for cache, missing, rows in (("cache", [], 8), ("fresh", ["cat", "coffee"], 0)):
        out = tmp / f"o-{cache}"
        code, _, err = _freeze_main(capsys, *args, "--cache", str(tmp / cache), "--out", str(out))
        assert code == 0, err
        entry = json.loads((out / "manifest.json").read_text())["anchors"]["frozenjpeg"]
        assert (entry["missing_images"], entry["rows"]) == (missing, rows)
    assert not any((tmp / "fresh").rglob("qp*"))  # nothing encoded
