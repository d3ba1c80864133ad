"""The report as printed and shared: page setup of every sheet, one boolean convention, the RD
charts' log rate axis and codec colours, codec labels, the terminal BD table, and (where
LibreOffice and poppler are installed) the workbook converted to PDF and read back."""

from __future__ import annotations

import json
import math
import re
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from ctc.cli import main
from ctc.report import build_report
from ctc.report.charts import rate_axis_limits
from ctc.report.style import (
    CODEC_STYLES,
    FORMATS,
    MIN_SCALE,
    PAGE_WIDTH,
    SPARE_COLOURS,
    codec_styles,
    sheet_width,
    wrapped_lines,
)
from ctc.store import Store

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = json.loads((ROOT / "anchors/results/kodak/manifest.json").read_text())["anchors"]
VERSIONS = {
    "nic": "nic 0.3.0, model unit sha256:0123456789abcdef",
    "jpeg": "Pillow 13.0.0, libjpeg-turbo 3.2.0; baseline 4:2:0, optimized Huffman",
    "bpg": MANIFEST["bpg"]["version"],
    "vvc": MANIFEST["vvc"]["version"],
}
EFFICIENCY = {"jpeg": 1.6, "bpg": 1.0, "vvc": 0.85, "nic": 0.9}  # bits relative to bpg
TARGETS = [0.06, 0.12, 0.25, 0.5, 1.0, 1.5]
IMAGES = {"kodim01": 1.0, "kodim02": 0.7, "kodim03": 1.3}
HASH = "feed" * 16


def _write_store(folder: Path) -> None:
    """nic and three anchors (jpeg, and bpg and vvc with the frozen results' versions) on
    three images: a run whose report has every sheet, labels and four codecs."""
    with Store(folder) as store:
        record = {
            "condition": {
                "name": "unit", "targets_bpp": TARGETS, "anchors": ["jpeg", "bpg", "vvc"],
                "tolerance": {"min_percent": -5, "max_percent": 5, "never_exceed": False},
                "bd_ranges": {"low": [0.06, 0.5], "high": [0.25, 1.5]},
            },
            "condition_hash": HASH, "codecs": VERSIONS,
            "dataset": {"name": "unit", "pixel_sha256": {i: f"sha-{i}" for i in IMAGES}},
            "ctc_version": "0.3.0", "python": "3.11", "platform": "unit", "machine": "x",
            "cpu_count": 2, "jobs": 1,
        }  # fmt: skip
        run_id = store.begin_run("unit", HASH, record)
        for codec, factor in EFFICIENCY.items():
            for image, scale in IMAGES.items():
                for n, target in enumerate(TARGETS):
                    bpp = target * (1.03 if n % 2 else 0.97)
                    psnr = 24 + 9 * math.log10(bpp / (0.06 * factor * scale)) + n * 0.05
                    msssim = 1 - 10 ** (-(psnr - 14) / 10)
                    store.add_result({
                        "codec": codec, "codec_version": VERSIONS[codec], "image": image,
                        "image_sha256": f"sha-{image}", "target_bpp": target,
                        "condition_hash": HASH, "condition": "unit", "width": 768,
                        "height": 512, "knob_name": "qp", "knob_value": 40 - 5 * n,
                        "rate_control": "search", "n_encodes": 4, "bytes": int(bpp * 49152),
                        "bpp": bpp, "deviation_percent": 100 * (bpp / target - 1),
                        "in_tolerance": int(n % 3 != 2), "psnr_rgb": psnr, "sse_rgb": 1000,
                        "n_values": 1179648, "psnr_y": psnr + 1, "msssim_rgb": msssim,
                        "msssim_rgb_db": -10 * math.log10(1 - msssim),
                        "encode_seconds": 0.1 * (1 + n), "decode_seconds": 0.05,
                        "rate_control_seconds": 0.4, "bitstream": f"b/{codec}/{image}/{n}.bin",
                        "run_id": run_id, "finished_at": "2026-01-01T00:00:00+00:00",
                    })  # fmt: skip
        store.end_run(run_id, "finished")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("print")
    _write_store(folder / "run")
    return build_report(folder / "run", ["jpeg", "bpg", "vvc"], folder / "unit.xlsx",
                        measure=False)  # fmt: skip


@pytest.fixture(scope="module")
def workbook(report):
    return load_workbook(report.workbook)


def test_every_sheet_is_set_up_to_print_readably(workbook):
    title_rows = {"Summary": "$4:$5", "BD per image": "$1:$1", "RD data": "$1:$1",
                  "Complexity": "$2:$2", "Conditions": "$1:$1"}  # fmt: skip
    for ws in workbook.worksheets:
        setup = ws.page_setup
        assert ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
        assert int(setup.fitToHeight) == 0, ws.title  # as many pages down as the rows need
        assert int(setup.fitToWidth) >= 1, ws.title
        assert setup.paperSize in (9, "9"), ws.title  # A4
        width = sheet_width(ws)
        if ws.title != "RD charts":  # its width is its charts'
            # Landscape exactly where the sheet is too wide for a portrait page at 100 %,
            # and never scaled below MIN_SCALE (11-point text at 8.25 points or more).
            expected = "landscape" if width > PAGE_WIDTH["portrait"] else "portrait"
            assert setup.orientation == expected, (ws.title, width)
            scale = PAGE_WIDTH[setup.orientation] * int(setup.fitToWidth) / width
            assert scale >= MIN_SCALE - 0.01, (ws.title, width, setup.fitToWidth)
        if ws.title.startswith("Results "):
            assert ws.print_title_rows == "$1:$1"
            assert ws.print_title_cols in (None, "$A:$B")
        elif ws.title == "RD charts":  # the lines that say what each codec is
            assert ws.print_title_rows == f"$1:${1 + len(EFFICIENCY)}"
        else:
            assert ws.print_title_rows == title_rows[ws.title], ws.title
        assert ws.page_margins.left <= 0.5 and ws.page_margins.right <= 0.5
        assert ws.oddHeader.right.text == "page &P of &N" and ws.oddHeader.left.text == "&A"
        assert ws.print_options.gridLines == (ws.title != "RD charts")
    # Results sheets name what the codec is on every printed page.
    assert "stand-in for VTM" in workbook["Results vvc"].oddHeader.center.text
    assert "x265" in workbook["Results bpg"].oddHeader.center.text


def test_a_sheet_too_wide_for_one_page_goes_across_pages_with_its_key_columns():
    from ctc.report.style import print_setup

    ws = Workbook().active
    for column in range(1, 41):
        ws.cell(row=1, column=column, value=f"column {column}")
    print_setup(ws, "1:1", "A:B")
    assert ws.page_setup.orientation == "landscape"
    assert int(ws.page_setup.fitToWidth) >= 2 and ws.print_title_cols == "$A:$B"
    pages = int(ws.page_setup.fitToWidth)
    assert PAGE_WIDTH["landscape"] * pages / sheet_width(ws) >= MIN_SCALE - 0.05


def test_booleans_are_excel_booleans_shown_true_false_in_every_sheet(workbook):
    seen = {}
    for ws in workbook.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                value = cell.value
                if isinstance(value, bool):
                    assert cell.number_format == FORMATS["bool"], (ws.title, cell.coordinate)
                    seen.setdefault(ws.title, set()).add(value)
                elif isinstance(value, str):
                    assert value not in ("True", "False", "true", "false"), ws.title
    assert seen["Results nic"] == {True, False}  # in tolerance
    assert seen["BD per image"] <= {True, False} and "BD per image" in seen
    assert seen["Conditions"] == {False}  # condition: tolerance.never_exceed
    ws = workbook["Results jpeg"]
    column = [c.column for c in ws[1] if c.value == "In tolerance"][0]
    values = [ws.cell(r, column).value for r in range(2, ws.max_row + 1)]
    assert all(isinstance(v, bool) for v in values) and len(values) == 18


def _series_colour(series) -> str:
    colour = series.graphicalProperties.line.solidFill.srgbClr  # "RRGGBB" as read back
    return getattr(colour, "val", colour)


def test_rd_charts_have_a_log_rate_axis_and_a_colour_per_codec(workbook):
    charts = workbook["RD charts"]._charts
    assert len(charts) == 3  # PSNR RGB, PSNR Y, MS-SSIM RGB
    data = workbook["RD data"]
    rates = [data.cell(r, 3).value for r in range(2, data.max_row + 1)]
    rates = [r for r in rates if isinstance(r, float)]
    colours: dict[str, str] = {}
    for chart in charts:
        scaling = chart.x_axis.scaling
        assert scaling.logBase == 2 and chart.x_axis.majorUnit == 2
        assert 0 < scaling.min <= min(rates) and max(rates) <= scaling.max
        names = []
        for series in chart.series:
            name = series.tx.v
            names.append(name)
            colour = _series_colour(series)
            assert colours.setdefault(name, colour) == colour  # the same in every chart
            assert series.marker.symbol not in (None, "none")
            dashed = series.graphicalProperties.line.prstDash == "dash"
            assert dashed == name.endswith("(anchor)"), name
        assert sorted(names) == ["bpg (anchor)", "jpeg (anchor)", "nic", "vvc (anchor)"]
        assert len({_series_colour(s) for s in chart.series}) == len(chart.series)
    # BPG and VVC clearly apart (not two shades of one hue) and as the PNG plots draw them.
    bpg, vvc = (_rgb(colours[f"{c} (anchor)"]) for c in ("bpg", "vvc"))
    assert math.dist(bpg, vvc) > 150
    assert colours["bpg (anchor)"] == CODEC_STYLES["bpg"].colour
    assert colours["vvc (anchor)"] == CODEC_STYLES["vvc"].colour
    # The lines above the charts say what each name is, stand-ins included.
    lines = [workbook["RD charts"].cell(r, 1).value for r in range(2, 2 + len(EFFICIENCY))]
    assert any(line.startswith("vvc: VVenC") and "stand-in for VTM" in line for line in lines)
    assert any(line.startswith("bpg: x265") and "stand-in for BPG" in line for line in lines)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (0, 2, 4))


def test_rate_axis_limits_are_powers_of_two_around_the_rates():
    assert rate_axis_limits([0.06, 0.5, 1.5]) == (1 / 32, 2.0)
    assert rate_axis_limits([0.25, 1.0]) == (0.25, 1.0)
    assert rate_axis_limits([0.3]) == (0.25, 0.5)
    assert rate_axis_limits([]) == (1 / 16, 2.0)


def test_codec_styles_are_fixed_and_distinct():
    styles = codec_styles(["vvc", "nic:model-a", "bpg", "bpg (bpg.csv)", "mine", "theirs"])
    assert styles["vvc"] == CODEC_STYLES["vvc"] and styles["bpg"] == CODEC_STYLES["bpg"]
    assert styles["nic:model-a"] == CODEC_STYLES["nic"]
    assert len({s.colour for s in styles.values()}) == 6  # the frozen copy gets its own
    assert len({s.colour for s in CODEC_STYLES.values()} | set(SPARE_COLOURS)) == len(
        CODEC_STYLES
    ) + len(SPARE_COLOURS)  # no known codec's colour is a spare one
    # A codec keeps its colour whatever else is in the report.
    assert codec_styles(["bpg"])["bpg"] == codec_styles(["jpeg", "vvc", "bpg"])["bpg"]
    many = codec_styles([f"c{i}" for i in range(20)])
    assert len({(s.colour, s.chart_marker) for s in many.values()}) == 20


def test_plots_use_the_chart_colours_and_name_what_each_codec_is(report, monkeypatch):
    from matplotlib.figure import Figure

    from ctc.report.plots import write_plots

    drawn = []

    def record(fig, path, **kwargs):
        (legend,) = fig.legends
        lines = {t.get_text(): h for t, h in zip(legend.get_texts(), legend.legend_handles,
                                                  strict=True)}  # fmt: skip
        drawn.append({text: handle.get_color() for text, handle in lines.items()})
        Path(path).write_bytes(b"")

    monkeypatch.setattr(Figure, "savefig", record)
    write_plots(report.data, report.anchors, report.workbook.parent, "check")
    assert drawn
    for legend in drawn:
        vvc = [t for t in legend if t.startswith("vvc (anchor): VVenC")]
        assert vvc and "stand-in for VTM" in vvc[0]
        assert legend[vvc[0]].lower() == f"#{CODEC_STYLES['vvc'].colour}".lower()
        bpg = [t for t in legend if t.startswith("bpg (anchor): x265")]
        assert legend[bpg[0]].lower() == f"#{CODEC_STYLES['bpg'].colour}".lower()
        assert f"nic: {VERSIONS['nic']}" in legend  # no label: its version


def test_summary_and_conditions_say_what_each_codec_is(workbook):
    ws = workbook["Summary"]
    rows = {ws.cell(r, 1).value: r for r in range(1, ws.max_row + 1)}
    block = rows["Codecs: what each name stands for"]
    entries = {ws.cell(r, 1).value: r for r in range(block + 2, block + 2 + len(EFFICIENCY))}
    assert set(entries) == set(EFFICIENCY)
    vvc = entries["vvc"]
    assert ws.cell(vvc, 2).value == "anchor" and ws.cell(entries["nic"], 2).value == "tested"
    assert ws.cell(vvc, 3).value.startswith("VVenC 1.15.0-dev preset fast, 4:2:0 10-bit")
    assert ws.cell(vvc, 3).value.endswith("stand-in for VTM")
    assert ws.cell(vvc, 7).value.startswith(VERSIONS["vvc"])
    assert ws.cell(entries["nic"], 3).value == "—"
    conditions = [tuple(c.value for c in r) for r in workbook["Conditions"].iter_rows()]
    assert ("bpg", "x265 4.3+49 preset veryslow, 4:4:4 8-bit, via FFmpeg — bpgenc-equivalent "
            "stand-in for BPG") in conditions  # fmt: skip


def test_a_note_too_long_for_a_row_is_cut_and_given_in_full_below(workbook):
    ws = workbook["Summary"]
    notes = [ws.cell(r, 13).value for r in range(6, ws.max_row + 1)]
    cut = [n for n in notes if isinstance(n, str) and n.endswith(" below)")]
    texts = [ws.cell(r, 1).value for r in range(1, ws.max_row + 1)]
    if cut:  # long notes: each has its entry under "BD notes in full"
        assert "BD notes in full" in texts
        number = re.search(r"note (\d+) below", cut[0]).group(1)
        assert any(isinstance(t, str) and t.startswith(f"{number}. ") for t in texts)
    # Every BD row is a few lines high at most.
    for r in range(6, 6 + 4 * 3 * 3):
        assert (ws.row_dimensions[r].height or 15) <= 6 * 14 + 3


def test_wrapped_lines():
    assert wrapped_lines("one two three", 20) == 1
    assert wrapped_lines("one two three", 9) == 2
    assert wrapped_lines("x" * 30, 11) == 3  # a long word is broken
    assert wrapped_lines("a\nb", 20) == 2


def test_the_terminal_bd_table_labels_and_aligns_every_column(report, capsys):
    run = report.data.folder
    out = report.workbook.parent / "cli.xlsx"
    assert main(["report", str(run), "--anchor", "bpg", "-o", str(out), "--no-complexity"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("codec vs anchor"))
    groups, head, rule, body = (
        lines[header - 1],
        lines[header],
        lines[header + 1],
        lines[header + 2 :],
    )
    assert head.split() == ["codec", "vs", "anchor", "metric"] + ["per-image", "curve"] * 3
    assert set(rule) == {"-"} and len(rule) == len(head)
    for title in ("low: 0.06–0.5 bpp", "high: 0.25–1.5 bpp", "all points"):
        assert title in groups
    # Every value ends where its column's label ends; each range's title over its columns.
    ends = [m.end() for m in re.finditer(r"per-image|curve", head)]
    assert [groups.index(t) + len(t) for t in ("0.5 bpp", "1.5 bpp", "all points")] == ends[1::2]
    rows = [line for line in body if " vs " in line]
    assert len(rows) == 3 * 3  # jpeg, nic, vvc against bpg; three metrics
    for line in rows:
        values = list(re.finditer(r"n/a|[+-]\d+\.\d\d", line))
        assert [m.end() for m in values] == ends, line
    nic = next(line for line in rows if line.startswith("nic vs bpg") and "PSNR RGB" in line)
    assert re.search(r"-\d+\.\d\d", nic)  # nic spends fewer bits than bpg here


def test_ctc_results_says_what_runs(report, capsys):
    assert main(["results", str(report.data.folder)]) == 0
    out = capsys.readouterr().out
    assert f"vvc: {VERSIONS['vvc']}" in out  # the exact version stays
    assert re.search(r"^ +what runs: VVenC 1\.15\.0-dev preset fast, 4:2:0 10-bit, via FFmpeg "
                     r"— stand-in for VTM$", out, re.M)  # fmt: skip
    assert "what runs: x265 4.3+49 preset veryslow" in out
    nic = out.split(f"nic: {VERSIONS['nic']}\n")[1]
    assert not nic.lstrip(" ").startswith("what runs")  # nic has no label: nothing to add


# --- The workbook converted to PDF with LibreOffice and read back (poppler) ---

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
POPPLER = shutil.which("pdftotext") and shutil.which("pdfinfo")


def _convert(files: list[Path], folder: Path) -> None:
    profile = folder / "lo-profile"  # its own profile: no clash with a running LibreOffice
    subprocess.run(
        [SOFFICE, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", "pdf",
         "--outdir", str(folder), *map(str, files)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip


def _pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    return int(re.search(r"^Pages:\s+(\d+)", info.stdout, re.M).group(1))


def _text(pdf: Path, page: int, *options: str) -> str:
    args = ["pdftotext", "-f", str(page), "-l", str(page), *options, str(pdf), "-"]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def _word_heights(pdf: Path, page: int) -> list[float]:
    words = re.findall(r'yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)"',
                       _text(pdf, page, "-bbox"))  # fmt: skip
    return sorted(float(b) - float(a) for a, b in words)


@pytest.mark.skipif(not SOFFICE, reason="LibreOffice (soffice) is not installed")
@pytest.mark.skipif(not POPPLER, reason="poppler-utils (pdftotext, pdfinfo) is not installed")
def test_the_pdf_that_libreoffice_prints(report, workbook, tmp_path):
    # A calibration sheet printed at 100 %: how tall a word of 11-point text is in this PDF
    # with the fonts this machine has.
    calibration = Workbook()
    for row in range(1, 11):
        calibration.active.cell(row=row, column=1, value=f"calibration text {row}")
    calibration.save(tmp_path / "calibration.xlsx")
    _convert([report.workbook, tmp_path / "calibration.xlsx"], tmp_path)
    eleven_point = statistics.median(_word_heights(tmp_path / "calibration.pdf", 1))
    pdf = tmp_path / f"{report.workbook.stem}.pdf"
    pages = _pages(pdf)
    assert len(workbook.sheetnames) <= pages <= 40
    printed = []
    for page in range(1, pages + 1):
        text = _text(pdf, page, "-layout")
        first = text.strip().splitlines()[0]
        assert first.rstrip().endswith(f"page {page} of {pages}"), first
        sheet = next(s for s in sorted(workbook.sheetnames, key=len, reverse=True)
                     if first.startswith(s))  # fmt: skip
        printed.append(sheet)
        # The header rows are on every page of a table.
        heading = {"Summary": "Anchor", "BD per image": "Metric", "RD data": "Quality",
                   "Conditions": "Field", "Complexity": "Quantity"}.get(sheet)  # fmt: skip
        if sheet.startswith("Results "):
            heading = "Image"
        if heading:
            assert heading in text, (page, sheet)
        if sheet == "RD charts":
            assert "stand-in for VTM" in text
        # Text prints at 8 points or more (the 10th percentile: rotated axis titles aside).
        heights = _word_heights(pdf, page)
        effective = 11 * heights[len(heights) // 10] / eleven_point
        assert effective >= 7.9, (page, sheet, effective)
    assert list(dict.fromkeys(printed)) == workbook.sheetnames  # every sheet, in order
