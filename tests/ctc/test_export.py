"""Kept reconstructions (`ctc run --keep-reconstructions`) and `ctc export --layout jpeg-ai`:
real runs of the JPEG anchor on small crops."""

import csv
import sqlite3

import numpy as np
import pytest
from ctc_testing import write_condition
from PIL import Image

from anchors.jpeg import JpegCodec
from ctc.cli import main
from ctc.export import jpeg_ai_names
from ctc.job import reconstruction_path
from ctc.runner import run
from ctc.store import Store

TARGETS = [0.5, 1.0]


@pytest.fixture()
def condition(tmp_path):
    return write_condition(tmp_path, targets_bpp=TARGETS, metrics={"psnr_rgb": {}})


def _run(condition, crop_folder, out, **kw):
    return run(
        condition, codecs=["jpeg"], dataset=crop_folder, out=out, progress=False, frozen=False,
        **kw,
    )  # fmt: skip


def _png(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def _rows(out) -> list[dict]:
    with Store(out) as store:
        return store.results()


def test_reconstruction_path_follows_the_bitstream():
    assert reconstruction_path("bitstreams/jpeg-1/abc/cat-0/0.5bpp.jpg") == (
        "reconstructions/jpeg-1/abc/cat-0/0.5bpp.png"
    )
    assert reconstruction_path("frozen:bpg/fvc.csv") is None


def test_keep_reconstructions_writes_the_decoded_pngs(condition, crop_folder, tmp_path):
    out = tmp_path / "out"
    summary = _run(condition, crop_folder, out, keep_reconstructions=True)
    assert summary.done == 3 * len(TARGETS) and not summary.failures
    codec = JpegCodec()
    for row in summary.rows:
        rec = out / reconstruction_path(row["bitstream"])
        decoded = np.asarray(codec.decode((out / row["bitstream"]).read_bytes()))
        assert np.array_equal(_png(rec), decoded)
    assert not list(out.rglob("*.tmp"))


def test_keeping_reconstructions_changes_no_row(condition, crop_folder, tmp_path):
    plain = _run(condition, crop_folder, tmp_path / "plain")
    kept = _run(condition, crop_folder, tmp_path / "kept", keep_reconstructions=True)
    assert not (tmp_path / "plain" / "reconstructions").exists()
    ignore = {"encode_seconds", "decode_seconds", "rate_control_seconds", "finished_at"}
    assert [{k: v for k, v in r.items() if k not in ignore} for r in plain.rows] == [
        {k: v for k, v in r.items() if k not in ignore} for r in kept.rows
    ]


def test_rerun_with_the_flag_decodes_missing_reconstructions_only(condition, crop_folder, tmp_path):
    out = tmp_path / "out"
    first = _run(condition, crop_folder, out)
    bitstreams = {r["bitstream"]: (out / r["bitstream"]).stat().st_mtime_ns for r in first.rows}
    rows = _rows(out)
    again = _run(condition, crop_folder, out, keep_reconstructions=True)
    assert (again.done, again.reconstructed, again.failures) == (0, len(first.rows), [])
    assert _rows(out) == rows  # run_id, finished_at and every measure unchanged
    assert {b: (out / b).stat().st_mtime_ns for b in bitstreams} == bitstreams
    codec = JpegCodec()
    for row in rows:
        decoded = np.asarray(codec.decode((out / row["bitstream"]).read_bytes()))
        assert np.array_equal(_png(out / reconstruction_path(row["bitstream"])), decoded)
    third = _run(condition, crop_folder, out, keep_reconstructions=True)
    assert (third.done, third.reconstructed) == (0, 0)


def test_jpeg_ai_names_follow_the_reference_software():
    assert jpeg_ai_names("HEVC", "00016_TE_1744x2000_8bit_sRGB", 1744, 2000, 0.25) == (
        "HEVC_00016_TE_025.bits",
        "HEVC_00016_TE_1744x2000_8bit_sRGB_025.png",
    )
    assert jpeg_ai_names("nic:../m_1.pt", "cat", 67, 51, 0.12) == (
        "nic-m-1-pt_cat_012.bits",
        "nic-m-1-pt_cat_67x51_8bit_sRGB_012.png",
    )
    assert jpeg_ai_names("jpeg", "kodim01", 768, 512, 2.0)[0] == "jpeg_kodim01_200.bits"


def test_export_writes_the_jpeg_ai_layout(condition, crop_folder, tmp_path, capsys):
    out, dest = tmp_path / "out", tmp_path / "submission"
    argv = ["run", str(condition), "--codec", "jpeg", "--dataset", str(crop_folder)]
    assert main([*argv, "--out", str(out), "--no-progress", "--keep-reconstructions"]) == 0
    assert main(["export", str(out), "--layout", "jpeg-ai", str(dest)]) == 0
    rows = _rows(out)
    with open(dest / "manifest.csv", newline="") as f:
        manifest = list(csv.DictReader(f))
    assert len(manifest) == len(rows) == 3 * len(TARGETS)
    by_key = {(m["codec"], m["image"], float(m["target_bpp"])): m for m in manifest}
    for row in rows:
        m = by_key[(row["codec"], row["image"], row["target_bpp"])]
        rate = f"{round(row['target_bpp'] * 100):03d}"
        size = f"{row['width']}x{row['height']}"
        assert m["bit"] == f"bit/jpeg_{row['image']}_{rate}.bits"
        assert m["rec"] == f"rec/jpeg_{row['image']}_{size}_8bit_sRGB_{rate}.png"
        assert (dest / m["bit"]).read_bytes() == (out / row["bitstream"]).read_bytes()
        kept = _png(out / reconstruction_path(row["bitstream"]))
        assert np.array_equal(_png(dest / m["rec"]), kept)
        assert int(m["bytes"]) == row["bytes"] and float(m["bpp"]) == row["bpp"]
        assert m["codec_version"] == row["codec_version"]
    listed = {m["bit"] for m in manifest} | {m["rec"] for m in manifest}
    on_disk = {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()}
    assert on_disk == listed | {"manifest.csv"}


def _one_line_error(capsys, argv) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ctc: error: ")
    return err


def test_export_refusals(condition, crop_folder, tmp_path, capsys):
    out, dest = tmp_path / "out", tmp_path / "dest"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no results" in _one_line_error(
        capsys, ["export", str(empty), "--layout", "jpeg-ai", str(dest)]
    )
    _run(condition, crop_folder, out)  # no reconstructions kept
    err = _one_line_error(capsys, ["export", str(out), "--layout", "jpeg-ai", str(dest)])
    assert "no kept reconstruction" in err and "--keep-reconstructions" in err
    assert not dest.exists()
    _run(condition, crop_folder, out, keep_reconstructions=True)
    dest.mkdir()
    (dest / "other").write_text("x")
    err = _one_line_error(capsys, ["export", str(out), "--layout", "jpeg-ai", str(dest)])
    assert "not empty" in err and "--force" in err
    assert main(["export", str(out), "--layout", "jpeg-ai", str(dest), "--force"]) == 0
    assert len(list((dest / "bit").iterdir())) == 3 * len(TARGETS)
    err = _one_line_error(
        capsys, ["export", str(out), "--layout", "jpeg-ai", str(tmp_path / "d2"), "--codec", "x"]
    )
    assert "no rows of codec 'x'" in err


def test_export_names_frozen_rows(condition, crop_folder, tmp_path, capsys):
    out = tmp_path / "out"
    summary = _run(condition, crop_folder, out, keep_reconstructions=True)
    row = {**summary.rows[0], "codec": "bpg", "bitstream": "frozen:bpg/results.csv"}
    with Store(out) as store:
        store.add_result(row)
    err = _one_line_error(capsys, ["export", str(out), "--layout", "jpeg-ai", str(tmp_path / "d")])
    assert "frozen anchor results" in err and "bpg" in err and "--codec" in err
    argv = ["export", str(out), "--layout", "jpeg-ai", str(tmp_path / "d"), "--codec", "jpeg"]
    assert main(argv) == 0
    with sqlite3.connect(out / "results.sqlite") as con:
        assert con.execute("SELECT count(*) FROM results").fetchone()[0] == len(summary.rows) + 1


def test_a_job_done_again_without_the_flag_drops_its_old_reconstruction(
    condition, crop_folder, tmp_path
):
    out = tmp_path / "out"
    first = _run(condition, crop_folder, out, keep_reconstructions=True)
    bitstream = first.rows[0]["bitstream"]
    (out / bitstream).write_bytes(b"damaged")  # so the next run does this job again
    again = _run(condition, crop_folder, out)
    assert again.done == 1
    assert not (out / reconstruction_path(bitstream)).exists()
    assert (out / reconstruction_path(first.rows[1]["bitstream"])).is_file()
