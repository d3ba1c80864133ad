import fcntl

import numpy as np
import pytest
from ctc_testing import write_condition

from anchors.jpeg import JpegCodec
from ctc.images import load_image
from ctc.metrics.psnr import psnr_rgb
from ctc.runner import RunError, run


@pytest.fixture()
def condition(tmp_path):
    return write_condition(tmp_path, metrics={"psnr_rgb": {}, "msssim_y": {}, "vmaf": {}})


def test_run_writes_bitstreams_rows_and_a_run_record(condition, crop_folder, crops, tmp_path):
    out = tmp_path / "out"
    summary = run(condition, codecs=["jpeg"], dataset=crop_folder, out=out, progress=False)
    assert (summary.total, summary.skipped, summary.done, summary.failures) == (6, 0, 6, [])
    codec = JpegCodec()
    for r in summary.rows:
        path = out / r["bitstream"]
        assert path.suffix == ".jpg" and path.stat().st_size == r["bytes"]
        assert r["bpp"] == 8 * r["bytes"] / (r["width"] * r["height"])
        decoded = codec.decode(path.read_bytes())
        assert r["psnr_rgb"] == psnr_rgb(crops[r["image"]], decoded)
        assert (
            r["codec_version"] == codec.version() and r["condition_hash"] == summary.condition.hash
        )
        assert r["in_tolerance"] == int(abs(r["deviation_percent"]) <= 15)
        assert r["msssim_y"] is not None and r["psnr_yuv"] is None
        assert (r["vmaf"] is None) == (min(r["width"], r["height"]) < 33)
    from ctc.store import Store

    with Store(out) as store:
        (record,) = [r["record"] for r in store.runs()]
    assert record["dataset"]["pixel_sha256"].keys() == crops.keys()
    assert record["codecs"]["jpeg"] == codec.version()
    assert "libvmaf" in record["tools"]["vmaf"]


def test_rerun_skips_finished_jobs_and_redoes_a_lost_bitstream(condition, crop_folder, tmp_path):
    out = tmp_path / "out"
    first = run(condition, codecs=["jpeg"], dataset=crop_folder, out=out, progress=False)
    again = run(condition, codecs=["jpeg"], dataset=crop_folder, out=out, progress=False)
    assert (again.skipped, again.done) == (6, 0)
    assert [r["finished_at"] for r in again.rows] == [r["finished_at"] for r in first.rows]
    (out / first.rows[0]["bitstream"]).unlink()
    third = run(condition, codecs=["jpeg"], dataset=crop_folder, out=out, progress=False)
    assert (third.skipped, third.done) == (5, 1)


def test_parallel_workers_give_the_same_rows(crop_folder, tmp_path, test_codecs):
    metrics = {"psnr_rgb": {}, "msssim_y": {}}
    condition = write_condition(tmp_path, targets_bpp=[4.0, 6.0], metrics=metrics)
    kw = dict(codecs=["jpeg", "quantzlib"], dataset=crop_folder, progress=False)
    serial = run(condition, jobs=1, out=tmp_path / "serial", **kw)
    parallel = run(condition, jobs=2, out=tmp_path / "parallel", **kw)
    assert parallel.done == serial.done == 12
    fields = ("codec", "image", "target_bpp", "knob_value", "bytes", "psnr_rgb", "msssim_y")
    assert [[r[f] for f in fields] for r in parallel.rows] == [
        [r[f] for f in fields] for r in serial.rows
    ]
    knobs = {r["knob_value"] for r in serial.rows if r["codec"] == "quantzlib"}
    assert any(k != round(k) for k in knobs)  # the continuous knob took non-integer values
    assert all(r["in_tolerance"] for r in serial.rows if r["codec"] == "quantzlib")


def test_codec_that_fails_to_load_is_skipped(condition, crop_folder, tmp_path, test_codecs):
    s = run(condition, codecs=["missing_model", "jpeg"], dataset=crop_folder, out=tmp_path / "o")
    assert list(s.codec_errors) == ["missing_model"] and s.done == 6
    with pytest.raises(RunError, match="no codec could be loaded: codec 'missing_model'"):
        run(condition, codecs=["missing_model"], dataset=crop_folder, out=tmp_path / "o")


def test_failed_jobs_are_recorded_and_retried(condition, crop_folder, tmp_path, test_codecs):
    out = tmp_path / "out"
    s = run(condition, codecs=["cropping", "jpeg"], dataset=crop_folder, out=out, progress=False)
    assert s.done == 6 and len(s.failures) == 6
    assert all("JobError: codec 'cropping' decoded" in message for _, message in s.failures)
    again = run(condition, codecs=["cropping", "jpeg"], dataset=crop_folder, out=out)
    assert (again.skipped, len(again.failures)) == (6, 6)


def test_one_run_per_output_folder(condition, crop_folder, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(RunError, match="another ctc run is using"):
            run(condition, codecs=["jpeg"], dataset=crop_folder, out=out)


def test_images_are_read_as_originals(crop_folder, crops):
    for name, image in crops.items():
        assert np.array_equal(load_image(crop_folder / f"{name}.png"), image)
