"""A condition's anchor without rows in the run folder (vtm could not run): `ctc report` with the
condition's anchors reports against those that have rows and says, on stderr and in the
workbook's notes, which anchor it left out. A real store, read back from the workbook."""

import math

from openpyxl import load_workbook

from ctc.cli import main
from ctc.report import build_report
from ctc.store import Store

TARGETS = [0.25, 0.5, 1.0, 1.5]
IMAGES = {"img_a": 1.0, "img_b": 2.0}
HASH = "0a7c" * 16


def _row(codec: str, image: str, target: float, bpp: float, run_id: int) -> dict:
    psnr = 24 + 8 * math.log10(bpp / 0.06 / (0.8 if codec == "test" else 1.0))
    return {
        "codec": codec, "codec_version": f"{codec} 1.0", "image": image,
        "image_sha256": f"sha-{image}", "target_bpp": target, "condition_hash": HASH,
        "condition": "twoanchors", "width": 64, "height": 48, "knob_name": "q",
        "knob_value": round(100 * bpp, 3), "rate_control": "search", "n_encodes": 4,
        "bytes": int(bpp * 64 * 48 / 8), "bpp": bpp, "deviation_percent": 100 * (bpp / target - 1),
        "in_tolerance": 1, "psnr_rgb": psnr,
        "sse_rgb": 1000, "n_values": 9216, "encode_seconds": 0.01, "decode_seconds": 0.02,
        "rate_control_seconds": 0.1, "bitstream": f"b/{codec}/{image}/{target}.bin",
        "run_id": run_id, "finished_at": "2026-01-01T00:00:00+00:00",
    }  # fmt: skip


def _write_store(folder) -> None:
    """A run of a condition whose anchors are vtm and webp: webp and the test codec have rows,
    vtm none (it could not run here)."""
    record = {
        "condition": {"name": "twoanchors", "targets_bpp": TARGETS, "anchors": ["vtm", "webp"]},
        "condition_hash": HASH, "dataset": {"name": "unit"},
        "codecs": {"webp": "webp 1.0", "test": "test 1.0"},
        "ctc_version": "0.1.0", "python": "3.11", "platform": "unit", "machine": "x",
        "cpu_count": 2, "jobs": 1,
    }  # fmt: skip
    with Store(folder) as store:
        run_id = store.begin_run("twoanchors", HASH, record)
        for image, scale in IMAGES.items():
            for target in TARGETS:
                store.add_result(_row("webp", image, target, target * scale, run_id))
                store.add_result(_row("test", image, target, 0.8 * target * scale, run_id))
        store.end_run(run_id, "finished")


def _texts(path) -> list[str]:
    ws = load_workbook(path)["Summary"]
    return [str(c.value) for row in ws.iter_rows() for c in row if c.value is not None]


def test_a_condition_anchor_without_rows_is_named_on_stderr_and_in_the_notes(tmp_path, capsys):
    folder = tmp_path / "run"
    _write_store(folder)
    out = tmp_path / "report.xlsx"
    assert main(["report", str(folder), "--no-complexity", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("ctc: warning:")]
    assert warnings == [
        f"ctc: warning: anchor vtm of condition twoanchors has no rows in {folder}: no BD-rates "
        "against it (codecs with rows: test, webp)"
    ]
    assert "test vs webp" in captured.out and "vtm" not in captured.out
    texts = _texts(out)
    assert warnings[0].removeprefix("ctc: warning: ") in texts
    assert texts.index("Notes") < texts.index(warnings[0].removeprefix("ctc: warning: "))


def test_anchors_given_or_all_present_give_no_warning(tmp_path, capsys):
    folder = tmp_path / "run"
    _write_store(folder)
    report = build_report(folder, ["webp"], tmp_path / "a.xlsx", measure=False, plots=False)
    assert report.warnings == [] and not any("no rows" in n for n in report.data.notes)
    default = build_report(folder, None, tmp_path / "b.xlsx", measure=False, plots=False)
    assert default.anchors == ["webp"] and len(default.warnings) == 1
    assert default.warnings[0] in default.data.notes
    args = ["report", str(folder), "--anchor", "webp", "--no-complexity", "-o",
            str(tmp_path / "c.xlsx")]  # fmt: skip
    assert main(args) == 0
    assert "ctc: warning:" not in capsys.readouterr().err
