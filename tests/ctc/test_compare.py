"""ctc compare: one tool (JPEG without chroma subsampling, a MODULE:CLASS codec written here)
against its anchor (jpeg), from real runs on small crops of scikit-image photos; BD-rates
checked against ctc.report, time ratios against the rows, the outputs read back, and the
errors through the real command line."""

import json
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from openpyxl import load_workbook
from PIL import Image
from skimage import data as skdata

from anchors.freeze import freeze
from ctc.cli import main
from ctc.compare import NOT_SAME_RUN, cell_notes, compare, markdown, write_workbook
from ctc.complexity_cache import ComplexityCache
from ctc.report import build_report
from ctc.report.style import HEADER_FILL, MIN_SCALE, PAGE_WIDTH, sheet_width
from ctc.report.workbook import NOTE_CHARS
from ctc.runner import run
from ctc.store import Store

TOOL = "compare_codecs:Jpeg444"
FROZEN = "cmpfrozen"
CODECS = '''
    """The codecs of the comparison tests: JPEG 4:4:4 (the tool, docs/ctc.md "A codec without
    packaging it") and the JPEG anchor with frozen results (registered as cmpfrozen)."""

    import io
    import os

    import numpy as np
    import PIL
    from PIL import Image

    from anchors.jpeg import JpegCodec
    from ctc.codec import Knob


    class Jpeg444:
        """Pillow's baseline JPEG with 4:4:4 chroma (no subsampling)."""

        name = "jpeg444"
        knob = Knob("quality", "integer", 1, 95, rate_increases=True)
        extension = "jpg"

        def version(self) -> str:
            return f"Pillow {PIL.__version__} JPEG 4:4:4"

        def encode(self, image: np.ndarray, knob_value: float) -> bytes:
            out = io.BytesIO()
            Image.fromarray(image).save(out, "JPEG", quality=int(knob_value), subsampling=0)
            return out.getvalue()

        def decode(self, data: bytes) -> np.ndarray:
            return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


    class FrozenJpeg(JpegCodec):
        """The JPEG anchor, its frozen results in $CTC_TEST_COMPARE_FROZEN."""

        name = "cmpfrozen"

        @property
        def frozen_results(self):
            return os.environ.get("CTC_TEST_COMPARE_FROZEN")
'''


@pytest.fixture(scope="module")
def codec_folder(tmp_path_factory):
    """A folder holding the codecs' module and a metadata-only distribution that registers
    cmpfrozen in the ctc.codecs group; on sys.path while the module's tests run."""
    folder = tmp_path_factory.mktemp("codecs")
    (folder / "compare_codecs.py").write_text(textwrap.dedent(CODECS))
    info = folder / "ctc_compare_test-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ctc-compare-test\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(f"[ctc.codecs]\n{FROZEN} = compare_codecs:FrozenJpeg\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder))
        yield folder


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    """Three 128x96 crops of scikit-image photos (one with an odd height)."""
    folder = tmp_path_factory.mktemp("compare-crops")
    Image.fromarray(skdata.astronaut()[60:156, 180:308]).save(folder / "astro.png")
    Image.fromarray(skdata.coffee()[100:196, 260:388]).save(folder / "coffee.png")
    Image.fromarray(skdata.chelsea()[60:155, 130:257]).save(folder / "cat.png")
    return folder


def write_condition(folder: Path, name: str = "cmp", **fields) -> Path:
    """A condition with three targets and two BD ranges besides all points."""
    spec = {
        "name": name, "targets_bpp": [0.75, 1.5, 3.0],
        "bd_ranges": {"low": [0.75, 1.5], "high": [1.5, 3.0]},
        "tolerance": {"min_percent": -15, "max_percent": 15, "scope": "per_image"},
        "colour": {"matrix": "bt709", "range": "full", "bit_depth": 8},
        "metrics": {"psnr_rgb": {}, "psnr_yuv": {"chroma": "420"}, "msssim_rgb": {}},
        "anchors": ["jpeg"], "dataset": "skimage", "output": str(folder / "out"), **fields,
    }  # fmt: skip
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="module")
def condition(tmp_path_factory):
    return write_condition(tmp_path_factory.mktemp("condition"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, codec_folder, crops, condition):
    """The tool and the anchor run in one run of the condition (18 jobs)."""
    out = tmp_path_factory.mktemp("compare-run") / "out"
    summary = run(condition, codecs=["jpeg", TOOL], dataset=crops, out=out, progress=False)
    assert summary.done == 18 and not summary.failures
    return out


@pytest.fixture()
def codec_env(codec_folder):
    """The environment of a `ctc` subprocess that imports the codecs' module."""
    path = os.pathsep.join([str(codec_folder), *sys.path])
    return {**os.environ, "PYTHONPATH": path}


def test_bd_rates_are_the_reports(run_dir, tmp_path):
    result = compare(run_dir, TOOL, "jpeg", measure=False)
    report = build_report(run_dir, ["jpeg"], tmp_path / "report.xlsx", measure=False, plots=False)
    expected = {r.metric.label: r for r in report.bd if r.codec == TOOL}
    labels = [m.label for m in report.data.metrics()]
    assert [r.metric.label for r in result.bd] == labels == list(expected)
    assert len(labels) == 6  # PSNR RGB, Y, U, V, YUV 6:1:1; MS-SSIM RGB
    assert [r.name for r in result.data.bd_ranges] == ["low", "high", "all"]
    for row in result.bd:
        assert (row.codec, row.anchor) == (TOOL, "jpeg")
        want = expected[row.metric.label]
        for name, cell in row.cells.items():
            other = want.cells[name]
            assert cell.per_image_mean == other.per_image_mean is not None
            assert cell.average_curve == other.average_curve is not None
            assert (cell.outliers, cell.low_overlap, cell.left_out, cell.per_image) == (
                other.outliers, other.low_overlap, other.left_out, other.per_image,
            )  # fmt: skip


def test_time_ratios_are_geometric_means_of_the_rows(run_dir):
    result = compare(run_dir, TOOL, "jpeg", measure=False)
    with Store(run_dir) as store:
        rows = store.results()
    by_codec = {c: {(r["image"], r["target_bpp"]): r for r in rows if r["codec"] == c}
                for c in (TOOL, "jpeg")}  # fmt: skip
    assert result.timing_problem is None
    for quantity, column in zip(result.times, ("encode_seconds", "decode_seconds"), strict=True):
        logs = [math.log(r[column] / by_codec["jpeg"][key][column])
                for key, r in by_codec[TOOL].items()]  # fmt: skip
        assert quantity.ratio == pytest.approx(math.exp(sum(logs) / len(logs)), rel=1e-12)
        assert quantity.pairs == len(logs) == 9
        assert quantity.tool is quantity.anchor is None  # a ratio of pairs, no per-codec value
        assert "over 9 image × target pairs of the rows" in quantity.source
        assert "run 1 on " in quantity.source


def _cells(line: str) -> list[str]:
    """The cells of a Markdown table row (pipes escaped as \\| stay in their cell)."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]


def test_markdown_has_every_metric_range_and_line(run_dir, capsys):
    code = main(["compare", str(run_dir), "--tool", TOOL, "--anchor", "jpeg", "--no-complexity"])
    out, err = capsys.readouterr()
    assert code == 0, err
    default = run_dir / "compare-compare_codecs_Jpeg444-vs-jpeg.xlsx"
    assert err.splitlines() == [f"ctc: wrote {default}"] and default.is_file()
    result = compare(run_dir, TOOL, "jpeg", measure=False)
    assert out == markdown(result)
    tables = [line for line in out.splitlines() if line.startswith("| ")]
    header = _cells(tables[0])
    for bpp_range in result.data.bd_ranges:
        for aggregation in ("per-image mean", "average curve"):
            assert f"BD-rate, {bpp_range.label}, {aggregation} (%)" in header
    assert len(header) == 2 + 2 * 3 + 1
    rows = {cells[0]: cells for cells in map(_cells, tables) if len(cells) == len(header)}
    for bd in result.bd:
        cells = rows[bd.metric.label]
        values = [v for r in ("low", "high", "all") for v in
                  (bd.cells[r].per_image_mean, bd.cells[r].average_curve)]  # fmt: skip
        assert cells[1] == "3" and cells[2:8] == [f"{v:+.2f}" for v in values]
    quantities = {cells[0]: cells for cells in map(_cells, tables) if len(cells) == 6}
    enc = quantities["EncT, encode time (s)"]
    assert enc[1:5] == ["—", "—", "—", f"{result.times[0].ratio:.3f}"]
    assert f"{result.times[1].ratio:.3f}" == quantities["DecT, decode time (s)"][4]
    for label in ("Encoder complexity (kMAC/pixel)", "Decoder complexity (kMAC/pixel)",
                  "Encoder parameters (count)", "Decoder parameters (count)"):  # fmt: skip
        assert quantities[label][1:5] == ["n/a"] * 4
        assert "complexity not measured (--no-complexity)" in quantities[label][5]
    assert f"- Tool: `{TOOL}` (version: Pillow " in out
    assert "- Anchor: `jpeg`: libjpeg-turbo" in out
    assert f"- Condition: cmp, hash {result.data.condition_hash}" in out


def test_workbook_is_one_sheet_one_page_wide(run_dir, tmp_path):
    result = compare(run_dir, TOOL, "jpeg", measure=False)
    path = write_workbook(result, tmp_path / "sub" / "compare.xlsx")
    wb = load_workbook(path)
    assert wb.sheetnames == ["Compare"]
    ws = wb["Compare"]
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert (ws.page_setup.fitToWidth, ws.page_setup.fitToHeight) == (1, 0)
    assert ws.page_setup.orientation == "landscape"
    assert sheet_width(ws) * MIN_SCALE <= PAGE_WIDTH["landscape"]
    headers = {}
    for row in ws.iter_rows():
        cells = [c for c in row if c.value is not None and c.fill == HEADER_FILL]
        if cells:
            headers[cells[0].row] = {c.value: c.column for c in cells}
    bd_row, quantity_row, _ = sorted(headers)
    bd_headers, quantity_headers = headers[bd_row], headers[quantity_row]
    numeric = [h for h in bd_headers if h not in ("Metric", "Flags and notes")]
    assert all(h.endswith(("(%)", "(count)")) for h in numeric) and len(numeric) == 7
    assert all("unit" in h or "ratio" in h for h in quantity_headers if "Tool" in h)
    for n, bd in enumerate(result.bd, start=bd_row + 1):
        assert ws.cell(n, 1).value == bd.metric.label
        column = bd_headers["BD-rate, all points, average curve (%)"]
        assert ws.cell(n, column).value == pytest.approx(bd.cells["all"].average_curve)
        assert ws.cell(n, column).number_format == "0.00"
    enc_row = quantity_row + 1
    assert ws.cell(enc_row, 1).value == "EncT, encode time (s)"
    ratio_column = quantity_headers["Tool / anchor (ratio)"]
    assert ws.cell(enc_row, ratio_column).value == pytest.approx(result.times[0].ratio)
    texts = [str(c.value) for row in ws.iter_rows() for c in row if c.value is not None]
    assert any(result.data.condition_hash in t for t in texts)
    if shutil.which("soffice") and shutil.which("pdfinfo"):  # one printed page
        proc = subprocess.run(
            ["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(path)],
            capture_output=True, text=True, timeout=180,
            env={**os.environ, "HOME": str(tmp_path)},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        info = subprocess.run(["pdfinfo", str(tmp_path / "compare.pdf")], capture_output=True,
                              text=True, timeout=60).stdout  # fmt: skip
        assert re.search(r"^Pages:\s+1$", info, re.M), info


def test_the_command_in_a_subprocess_writes_the_files_it_is_given(run_dir, tmp_path, codec_env):
    md, xlsx = tmp_path / "tool.md", tmp_path / "tool.xlsx"
    proc = subprocess.run(
        [sys.executable, "-m", "ctc.cli", "compare", str(run_dir), "--tool", TOOL, "--anchor",
         "jpeg", "--no-complexity", "--markdown", str(md), "--xlsx", str(xlsx)],
        capture_output=True, text=True, timeout=300, env=codec_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr.splitlines() == [
        f"ctc: wrote {md}",
        f"ctc: wrote {xlsx}",
    ]
    assert md.read_text(encoding="utf-8") == markdown(compare(run_dir, TOOL, "jpeg", measure=False))
    assert load_workbook(xlsx).sheetnames == ["Compare"]
    same = subprocess.run(
        [sys.executable, "-m", "ctc.cli", "compare", str(run_dir), "--tool", "jpeg", "--anchor",
         "jpeg"], capture_output=True, text=True, timeout=300, env=codec_env,
    )  # fmt: skip
    assert same.returncode == 2 and same.stdout == ""
    assert same.stderr == "ctc: error: the tool and the anchor are the same codec ('jpeg')\n"


@pytest.fixture(scope="module")
def two_conditions(tmp_path_factory, run_dir, crops):
    """A copy of run_dir with a second condition's rows (jpeg, PSNR RGB only: another hash)."""
    folder = tmp_path_factory.mktemp("two-conditions") / "out"
    shutil.copytree(run_dir, folder)
    other = write_condition(folder.parent, "other", metrics={"psnr_rgb": {}}, bd_ranges={})
    assert run(other, codecs=["jpeg"], dataset=crops, out=folder, progress=False).done == 9
    return folder


@pytest.mark.parametrize(
    "args,message",
    [
        (["--tool", TOOL, "--anchor", TOOL],
         f"the tool and the anchor are the same codec ('{TOOL}')"),
        (["--tool", "jpeg444", "--anchor", "jpeg"],
         f"no rows of 'jpeg444' in condition cmp (HASH); codecs with rows there: {TOOL}, jpeg"),
        (["--tool", TOOL, "--anchor", "bpg", "--condition", "cmp"],
         f"no rows of 'bpg' in condition cmp (HASH); codecs with rows there: {TOOL}, jpeg"),
        (["--tool", TOOL, "--anchor", "jpeg", "--condition", "nope"],
         "condition 'nope' matches none of the folder's conditions"),
    ],
    ids=["same codec", "tool without rows", "anchor without rows", "unknown condition"],
)  # fmt: skip
def test_errors_are_one_line_and_exit_2(args, message, run_dir, capsys):
    code = main(["compare", str(run_dir), *args, "--no-complexity"])
    out, err = capsys.readouterr()
    chash = compare(run_dir, TOOL, "jpeg", measure=False).data.condition_hash
    assert (code, out) == (2, "")
    assert err.startswith(f"ctc: error: {message.replace('HASH', chash[:12])}")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_folder_without_results_or_with_several_conditions(two_conditions, tmp_path, capsys):
    assert main(["compare", str(tmp_path), "--tool", TOOL, "--anchor", "jpeg"]) == 2
    err = capsys.readouterr().err
    assert err == f"ctc: error: no results in {tmp_path} (no results.sqlite)\n"
    assert main(["compare", str(two_conditions), "--tool", TOOL, "--anchor", "jpeg"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert re.fullmatch(
        rf"ctc: error: {re.escape(str(two_conditions))} has rows of several conditions: "
        r"other \([0-9a-f]{12}\), cmp \([0-9a-f]{12}\); choose one with --condition NAME\|HASH\n",
        err,
    )
    args = ["compare", str(two_conditions), "--tool", TOOL, "--anchor", "jpeg", "--condition",
            "cmp", "--no-complexity", "--markdown", str(tmp_path / "cmp.md")]  # fmt: skip
    assert main(args) == 0
    text = (tmp_path / "cmp.md").read_text(encoding="utf-8")
    assert "- Note: rows of other condition hashes are not reported: " in text


@pytest.mark.parametrize(
    "args,message",
    [(["--anchor", "jpeg"], "the following arguments are required: --tool"),
     (["--tool", ":x", "--anchor", "jpeg"], "expected NAME, NAME:ARGUMENT or MODULE:CLASS"),
     (["--tool", TOOL, "--anchor", "jpeg", "--xlsx", "out.csv"], "expected a FILE.xlsx")],
)  # fmt: skip
def test_argument_errors_exit_2(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and "Traceback" not in err


def test_rows_of_runs_on_different_machines_give_no_ratio(tmp_path, codec_folder, crops, condition):
    out = tmp_path / "out"
    for codec in ("jpeg", TOOL):  # two runs on this machine: the ratios come from the rows
        assert run(condition, codecs=[codec], dataset=crops, out=out, progress=False).done == 9
    same = compare(out, TOOL, "jpeg", measure=False)
    assert same.timing_problem is None and "runs 1, 2 on " in same.times[0].source
    with sqlite3.connect(out / "results.sqlite") as db:  # as if run 2 ran on another machine
        record = json.loads(db.execute("SELECT record FROM runs WHERE id = 2").fetchone()[0])
        record["machine"] = "aarch64"
        db.execute("UPDATE runs SET record = ? WHERE id = 2", (json.dumps(record),))
    db.close()
    other = compare(out, TOOL, "jpeg", measure=False)
    assert other.timing_problem.startswith("the rows come from runs on different machines (run ")
    assert ", aarch64, " in other.timing_problem
    for quantity in other.times:
        assert quantity.ratio is None and quantity.pairs is None
        assert quantity.source.startswith(f"{NOT_SAME_RUN}: the rows come from runs on different")
        assert quantity.source.endswith(
            "no complexity measurement of the tool and the anchor: no ratio"
        )
    with sqlite3.connect(out / "results.sqlite") as db:  # the same machine, other threads
        record["machine"], record["threads"] = "x86_64", 2
        db.execute("UPDATE runs SET record = ? WHERE id = 2", (json.dumps(record),))
    db.close()
    threads = compare(out, TOOL, "jpeg", measure=False).timing_problem
    assert threads.startswith("the rows come from runs on different machines (run ")
    assert "2 torch thread(s) per job" in threads and "1 torch thread(s) per job" in threads


def test_a_frozen_anchor_is_timed_by_the_complexity_measurement(
    tmp_path, codec_folder, crops, condition, capsys, monkeypatch
):
    """The anchor's rows come from frozen results: EncT/DecT come from the measured CPU times
    (measured here for real, on the run's largest image size, then cached)."""
    frozen = tmp_path / "frozen"
    freeze(FROZEN, str(crops), frozen / "crops", tmp_path / "encodes", [str(condition)], [50])
    monkeypatch.setenv("CTC_TEST_COMPARE_FROZEN", str(frozen))
    out = tmp_path / "out"
    summary = run(condition, codecs=[TOOL, FROZEN], dataset=crops, out=out, progress=False)
    assert (summary.frozen, summary.done, summary.failures) == (9, 9, [])
    md = tmp_path / "frozen.md"
    args = ["compare", str(out), "--tool", TOOL, "--anchor", FROZEN, "--markdown", str(md)]
    assert main(args) == 0
    err = capsys.readouterr().err
    for codec in (TOOL, FROZEN):
        assert f"ctc: complexity of {codec}: measuring on 128x96 with 2 timed runs" in err
        assert f"ctc: complexity of {codec}: measured in " in err
    result = compare(out, TOOL, FROZEN, complexity_cache=ComplexityCache())  # cached now
    assert result.timing_problem == (
        "anchor rows are frozen (9 of 9 compared rows from frozen:crops/cmpfrozen.csv: timed "
        "where and when they were frozen, not here)"
    )
    tool, anchor = result.measurements[TOOL], result.measurements[FROZEN]
    assert (tool["picture"]["width"], tool["picture"]["height"]) == (128, 96)
    for quantity, side in zip(result.times, ("encoder", "decoder"), strict=True):
        seconds = tool[side]["cpu_seconds_median"], anchor[side]["cpu_seconds_median"]
        assert (quantity.tool, quantity.anchor) == seconds
        assert quantity.ratio == pytest.approx(seconds[0] / seconds[1])
        assert quantity.source.startswith(f"{NOT_SAME_RUN}: anchor rows are frozen (9 of 9")
        assert "the ratio is of the complexity measurements' CPU times (median of 2" in (
            quantity.source
        )
    for quantity in result.complexity:  # JPEG has no torch network: no MACs, no parameters
        assert (quantity.tool, quantity.anchor, quantity.ratio) == (None, None, None)
        assert (
            quantity.source == "tool and anchor: no torch network, MACs and parameters do not apply"
        )
    text = md.read_text(encoding="utf-8")
    assert text == markdown(result)  # measured, then the same measurement from the cache
    assert "| EncT, encode time (s) |" in text and f"{NOT_SAME_RUN}: anchor rows are frozen" in text
    assert (
        f"(version: {result.data.versions[FROZEN]} [rows from frozen:crops/cmpfrozen.csv])" in text
    )

    unmeasured = compare(out, TOOL, FROZEN, measure=False)
    assert [q.ratio for q in unmeasured.times] == [None, None]
    assert "no complexity measurement of the tool and the anchor" in unmeasured.times[0].source

    given = tmp_path / "complexity.json"  # `ctc complexity --json` output of both codecs
    given.write_text(json.dumps([tool, anchor]))
    args = ["compare", str(out), "--tool", TOOL, "--anchor", FROZEN, "--no-complexity",
            "--complexity", str(given), "--xlsx", str(tmp_path / "given.xlsx")]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"| {result.times[0].ratio:.3f} |" in printed and "- Note:" not in printed


def test_output_paths_missing_folders_are_made_a_directory_is_a_usage_error(
    run_dir, tmp_path, capsys
):
    """--markdown and --xlsx alike: missing folders are made; a directory, or a file where a
    folder should be, is one line and exit 2, before anything is written."""
    md, xlsx = tmp_path / "md" / "deeper" / "tool.md", tmp_path / "xl" / "deeper" / "tool.xlsx"
    base = ["compare", str(run_dir), "--tool", TOOL, "--anchor", "jpeg", "--no-complexity"]
    assert main([*base, "--markdown", str(md), "--xlsx", str(xlsx)]) == 0
    assert md.read_text(encoding="utf-8").startswith("**BD-rate (%) of ")
    assert load_workbook(xlsx).sheetnames == ["Compare"]
    capsys.readouterr()
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    unwritten = ["--xlsx", str(tmp_path / "unwritten.xlsx")]
    for args, message in [
        (["--markdown", str(tmp_path), *unwritten],
         f"--markdown: {tmp_path} is a directory, not a file"),
        (["--markdown", str(a_file / "t.md"), *unwritten],
         f"--markdown: {a_file} is not a folder (in {a_file / 't.md'})"),
        (["--xlsx", str(a_file / "t.xlsx")],
         f"--xlsx: {a_file} is not a folder (in {a_file / 't.xlsx'})"),
    ]:  # fmt: skip
        assert main([*base, *args]) == 2
        out, err = capsys.readouterr()
        assert (out, err) == ("", f"ctc: error: {message}\n")
        assert not (tmp_path / "unwritten.xlsx").exists()
    (tmp_path / "dir.xlsx").mkdir()
    with pytest.raises(SystemExit) as exit_info:  # a directory as --xlsx: argparse says so
        main([*base, "--xlsx", str(tmp_path / "dir.xlsx")])
    assert exit_info.value.code == 2 and "is not a regular file" in capsys.readouterr().err


def _flagged_run(folder: Path) -> None:
    """A store of 12 crops under FVC-like targets and ranges where every image is flagged: the
    tool has the anchor's rate and a quality 8·log10(3) dB lower (BD-rate about +200 %: an
    outlier) or 8·log10(1/0.3) dB higher, by image; the quality ranges overlap less than 75 %."""
    targets, chash = [0.06, 0.12, 0.25, 0.5, 1.0, 1.5], "f1a9" * 16
    record = {
        "condition": {"name": "fvclike", "targets_bpp": targets, "anchors": ["anchor"],
                      "bd_ranges": {"low": [0.06, 0.5], "high": [0.25, 1.5]}},
        "condition_hash": chash, "dataset": {"name": "crops"},
        "codecs": {"anchor": "anchor 1.0", "tool": "tool 1.0"}, "ctc_version": "0.1.0",
        "python": "3.11", "platform": "unit", "machine": "x", "cpu_count": 2, "jobs": 1,
    }  # fmt: skip
    with Store(folder) as store:
        run_id = store.begin_run("fvclike", chash, record)
        for k in range(12):
            for target in targets:
                for codec, factor in (("anchor", 1.0), ("tool", 3.0 if k % 2 else 0.3)):
                    psnr = 24 + 8 * math.log10(target / 0.06 / factor)
                    msssim = 1 - 10 ** (-(psnr - 14) / 10)
                    store.add_result({
                        "codec": codec, "codec_version": f"{codec} 1.0", "image": f"crop{k:02d}",
                        "image_sha256": f"sha-{k}", "target_bpp": target, "condition_hash": chash,
                        "condition": "fvclike", "width": 64, "height": 48, "knob_name": "q",
                        "knob_value": 100 * target, "rate_control": "search", "n_encodes": 4,
                        "bytes": int(target * 64 * 48 / 8), "bpp": target,
                        "deviation_percent": 0.0, "in_tolerance": 1, "psnr_rgb": psnr,
                        "psnr_yuv": psnr + 2, "sse_rgb": 1000, "n_values": 9216,
                        "msssim_rgb": msssim, "encode_seconds": 0.01, "decode_seconds": 0.02,
                        "rate_control_seconds": 0.1, "bitstream": f"b/{codec}/{k}/{target}.bin",
                        "run_id": run_id, "finished_at": "2026-01-01T00:00:00+00:00",
                    })  # fmt: skip
        store.end_run(run_id, "finished")


def test_long_notes_are_cut_in_the_table_and_listed_whole_below(tmp_path):
    """As the report's Summary: a row's note is cut at NOTE_CHARS and listed whole under the
    tables (once for the metrics whose notes are the same), so the sheet prints on one page;
    the Markdown keeps every note whole."""
    _flagged_run(tmp_path / "run")
    result = compare(tmp_path / "run", "tool", "anchor", measure=False)
    notes = {bd.metric.label: "; ".join(cell_notes(bd, result.data.bd_ranges)) for bd in result.bd}
    assert len(notes) == 3 and all(len(n) > NOTE_CHARS for n in notes.values())
    assert notes["PSNR RGB"] == notes["PSNR YUV 6:1:1"] != notes["MS-SSIM RGB"]
    path = write_workbook(result, tmp_path / "compare.xlsx")
    ws = load_workbook(path)["Compare"]
    rows = {ws.cell(r, 1).value: r for r in range(1, ws.max_row + 1)}
    flags = next(c.column for c in ws[rows["Metric"]] if c.value == "Flags and notes")
    cut = {label: ws.cell(rows[label], flags).value for label in notes}
    assert all(len(text) <= NOTE_CHARS for text in cut.values()), cut
    assert cut["PSNR RGB"].endswith("… (note 1 below)")
    assert cut["PSNR YUV 6:1:1"].endswith("… (note 1 below)")
    assert cut["MS-SSIM RGB"].endswith("… (note 2 below)")
    assert notes["MS-SSIM RGB"].startswith(cut["MS-SSIM RGB"].removesuffix("… (note 2 below)"))
    below = rows["BD notes in full"]
    assert below > rows["Codecs and condition"]
    assert [ws.cell(below + n, 1).value for n in (1, 2)] == [
        f"1. PSNR RGB, PSNR YUV 6:1:1: {notes['PSNR RGB']}",
        f"2. MS-SSIM RGB: {notes['MS-SSIM RGB']}",
    ]
    assert max(ws.row_dimensions[r].height or 15 for r in range(1, ws.max_row + 1)) < 100
    text = markdown(result)
    for note in notes.values():  # the Markdown: every note whole, in its row
        assert f"| {note.replace('|', chr(92) + '|')} |" in text
    if shutil.which("soffice") and shutil.which("pdfinfo"):  # one printed page
        proc = subprocess.run(
            ["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(path)],
            capture_output=True, text=True, timeout=180,
            env={**os.environ, "HOME": str(tmp_path)},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        info = subprocess.run(["pdfinfo", str(tmp_path / "compare.pdf")], capture_output=True,
                              text=True, timeout=60).stdout  # fmt: skip
        assert re.search(r"^Pages:\s+1$", info, re.M), info


def test_the_timing_problem_says_whose_rows_are_frozen(run_dir, tmp_path):
    """Rows marked as frozen (their bitstream column, as ctc.frozen writes it): the tool's, the
    anchor's, or both, and the message says which."""
    folder = tmp_path / "out"
    shutil.copytree(run_dir, folder)
    sources = {TOOL: "frozen:crops/tool.csv", "jpeg": "frozen:crops/jpeg.csv"}
    expected = {
        (TOOL,): "tool rows are frozen (9 of 9 compared rows from frozen:crops/tool.csv: timed "
        "where and when they were frozen, not here)",
        ("jpeg",): "anchor rows are frozen (9 of 9 compared rows from frozen:crops/jpeg.csv: "
        "timed where and when they were frozen, not here)",
        (TOOL, "jpeg"): "tool and anchor rows are frozen (tool: 9 of 9 compared rows from "
        "frozen:crops/tool.csv; anchor: 9 of 9 compared rows from frozen:crops/jpeg.csv: timed "
        "where and when they were frozen, not here)",
    }
    for codecs, message in expected.items():
        with sqlite3.connect(folder / "results.sqlite") as db:
            for codec, source in sources.items():
                bitstream = source if codec in codecs else f"b/{codec}.bin"
                db.execute("UPDATE results SET bitstream = ? WHERE codec = ?", (bitstream, codec))
        db.close()
        result = compare(folder, TOOL, "jpeg", measure=False)
        assert result.timing_problem == message
        assert result.times[0].source.startswith(f"{NOT_SAME_RUN}: {message}; ")
