"""The report workbook: Summary, BD per image, one results sheet per codec, RD data and charts,
Complexity and Conditions (openpyxl), laid out like the JVET / FVC / JPEG AI reporting
templates that users otherwise fill by hand.

Every number is stored as a number with a display format; units are in the headers; header rows
are frozen.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from ctc.report.charts import add_rd_charts
from ctc.report.complexity_sheet import write_complexity
from ctc.report.data import ReportData
from ctc.report.style import (
    FLAG_FILL,
    SECTION_FONT,
    fit_columns,
    flatten,
    print_setup,
    title,
    wrap_rows,
    write_header,
    write_row,
)
from ctc.report.summary import RANGE_LABELS, RANGES, BDRow, CodecSummary

AGGREGATION_LABELS = {
    "per_image_mean": "per-image mean (BD per image, then the mean: FVC/NIC workbook)",
    "average_curve": "average curve (BD of the dataset-average curves: most papers)",
}
METHOD_LABELS = {
    "pchip": "pchip over log10 rate (JCTVC-L1100 / JVET CTC Excel macro)",
    "cubic": "cubic polynomial (VCEG-M33)",
    "akima": "Akima interpolation (Herglotz et al., ICIP 2022)",
}
RESULT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (store column, header, format)
    ("image", "Image", ""),
    ("target_bpp", "Target (bpp)", "bpp"),
    ("knob_value", "Knob value", "k"),
    ("bytes", "Bytes", "int"),
    ("bpp", "Rate (bpp)", "bpp"),
    ("deviation_percent", "Deviation (%)", "pct"),
    ("in_tolerance", "In tolerance", ""),
    ("n_encodes", "Encodes (count)", "int"),
    ("psnr_rgb", "PSNR RGB (dB)", "db"),
    ("psnr_y", "PSNR Y (dB)", "db"),
    ("psnr_u", "PSNR U (dB)", "db"),
    ("psnr_v", "PSNR V (dB)", "db"),
    ("psnr_yuv", "PSNR YUV 6:1:1 (dB)", "db"),
    ("msssim_rgb", "MS-SSIM RGB (linear)", "lin"),
    ("msssim_rgb_db", "MS-SSIM RGB (dB)", "db"),
    ("msssim_y", "MS-SSIM Y (linear)", "lin"),
    ("msssim_y_db", "MS-SSIM Y (dB)", "db"),
    ("vmaf", "VMAF (0–100)", "db"),
    ("encode_seconds", "Encode time (s)", "sec"),
    ("decode_seconds", "Decode time (s)", "sec"),
    ("rate_control_seconds", "Rate-control time (s)", "sec"),
)


def sheet_name(text: str, taken: Sequence[str]) -> str:
    """A valid, unique sheet name (at most 31 characters, none of []:*?/\\)."""
    clean = "".join("_" if c in "[]:*?/\\" else c for c in text)[:31]
    name, n = clean, 2
    while name in taken:
        suffix = f" {n}"
        name, n = clean[: 31 - len(suffix)] + suffix, n + 1
    return name


def write_workbook(
    path: str | Path,
    data: ReportData,
    anchors: Sequence[str],
    bd: Sequence[BDRow],
    summaries: Sequence[CodecSummary],
    *,
    method: str,
    aggregation: str,
    complexity: Sequence[dict[str, Any]],
    complexity_notes: Sequence[str] = (),
    command: str = "",
) -> dict[str, str]:
    """Write the workbook; returns the sheet name of each codec's results sheet."""
    wb = Workbook()
    summary = wb.active
    summary.title = "Summary"
    _summary(summary, data, anchors, bd, summaries, method, aggregation)
    _bd_per_image(wb.create_sheet("BD per image"), bd, method)
    results_sheets = {}
    for codec in data.codecs:
        name = sheet_name(f"Results {codec}", wb.sheetnames)
        results_sheets[codec] = name
        _results(wb.create_sheet(name), data, codec)
    add_rd_charts(wb, data)
    write_complexity(wb.create_sheet("Complexity"), complexity, complexity_notes)
    _conditions(wb.create_sheet("Conditions"), data, method, aggregation, command)
    for ws in wb.worksheets:
        print_setup(ws)
    wb.save(path)
    return results_sheets


def _summary(
    ws: Worksheet,
    data: ReportData,
    anchors: Sequence[str],
    bd: Sequence[BDRow],
    summaries: Sequence[CodecSummary],
    method: str,
    aggregation: str,
) -> None:
    name = data.condition.get("name", "")
    title(ws, 1, f"BD-rate (%) against each anchor — condition {name}, run {data.folder}")
    ws.cell(
        row=2,
        column=1,
        value=f"Negative: fewer bits at equal quality. Method: {METHOD_LABELS[method]}. MS-SSIM "
        "is integrated in dB. Flags: per-image |BD-rate| > 100 %, quality overlap < 75 %.",
    )
    ws.cell(
        row=3,
        column=1,
        value=f"★ headline aggregation: {AGGREGATION_LABELS[aggregation]}; the other is shown "
        "next to it.",
    )
    first, second = ["Codec", "Anchor", "Metric", "Images (count)"], ["", "", "", ""]
    order = [aggregation] + [a for a in AGGREGATION_LABELS if a != aggregation]
    short = {"per_image_mean": "per-image mean", "average_curve": "average curve"}
    for bpp_range in RANGES:
        for i, agg in enumerate(order):
            first.append(f"{bpp_range.capitalize()}: {RANGE_LABELS[bpp_range]}" if i == 0 else "")
            second.append(f"BD-rate, {short[agg]} (%)" + (" ★" if agg == aggregation else ""))
    first += ["Outliers |BD| > 100 % (images)", "Overlap < 75 % (images)", "Note"]
    second += ["", "", ""]
    write_header(ws, 4, first)
    write_header(ws, 5, second)
    for column in range(5, 5 + 2 * len(RANGES), 2):
        ws.merge_cells(start_row=4, start_column=column, end_row=4, end_column=column + 1)
    for column in (1, 2, 3, 4, 11, 12, 13):
        ws.merge_cells(start_row=4, start_column=column, end_row=5, end_column=column)
    row = 6
    for r in bd:
        values: list[Any] = [r.codec, r.anchor, r.metric.label, r.cells["all"].images]
        formats: list[str | None] = [None, None, None, "int"]
        outliers, low, notes = set(), set(), []
        for bpp_range in RANGES:
            cell = r.cells[bpp_range]
            pair = {"per_image_mean": cell.per_image_mean, "average_curve": cell.average_curve}
            values += [pair[a] for a in order]
            formats += ["pct", "pct"]
            outliers |= set(cell.outliers)
            low |= set(cell.low_overlap)
            if cell.error:
                notes.append(f"{bpp_range}: {cell.error}")
        if r.left_out:
            notes.append(f"left out (metric missing): {', '.join(r.left_out)}")
        values += [_names(outliers, r.cells["all"].images), _names(low, r.cells["all"].images)]
        values.append("; ".join(notes))
        formats += [None, None, None]
        write_row(ws, row, values, formats)
        for column in (11, 12):
            if ws.cell(row=row, column=column).value:
                ws.cell(row=row, column=column).fill = FLAG_FILL
        row += 1
    if not bd:
        ws.cell(row=row, column=1, value="No codec other than the anchors in this run.")
        row += 1
    ws.freeze_panes = "E6"

    row += 1
    title(ws, row, "Rate matching and run times", SECTION_FONT)
    row += 1
    headers = [
        "Codec", "Image × target pairs (count)", "In tolerance (count)", "In tolerance (%)",
        "Encode time, sum (s)", "Decode time, sum (s)",
    ]  # fmt: skip
    for anchor in anchors:
        headers += [
            f"EncT vs {anchor} (ratio, geo. mean)", f"DecT vs {anchor} (ratio, geo. mean)",
            f"Pairs compared with {anchor} (count)",
        ]  # fmt: skip
    headers.append("Version")
    write_header(ws, row, headers)
    ws.row_dimensions[row].height = 45
    row += 1
    for s in summaries:
        values = [
            s.codec, s.pairs, s.in_tolerance, 100 * s.share, s.encode_seconds, s.decode_seconds,
        ]  # fmt: skip
        formats = [None, "int", "int", "pct", "sec", "sec"]
        for anchor in anchors:
            values += [s.enc_ratio[anchor], s.dec_ratio[anchor], s.ratio_pairs[anchor]]
            formats += ["ratio", "ratio", "int"]
        values.append(data.versions.get(s.codec, ""))
        write_row(ws, row, values, formats)
        row += 1
    if data.notes:
        row += 1
        title(ws, row, "Notes", SECTION_FONT)
        for note in data.notes:
            row += 1
            ws.cell(row=row, column=1, value=note)
    widths = {"A": 12, "B": 12, "C": 17, "D": 9, "K": 26, "L": 26, "M": 50}
    for column in range(5, 11):
        widths[get_column_letter(column)] = 13
    for letter, width in widths.items():
        ws.column_dimensions[letter].width = width
    ws.row_dimensions[4].height = 30
    ws.row_dimensions[5].height = 45
    wrap_rows(ws, 6, 5 + len(bd), (11, 12, 13))


def _names(images: set[str], total: int, most: int = 6) -> str:
    """Flagged images by name, or their count when there are many (listed in BD per image)."""
    names = sorted(i for i in images if not i.startswith("<"))
    extra = sorted(i for i in images if i.startswith("<"))
    if len(names) > most:
        return ", ".join([f"{len(names)} of {total} images (see BD per image)", *extra])
    return ", ".join(names + extra)


def _bd_per_image(ws: Worksheet, bd: Sequence[BDRow], method: str) -> None:
    headers = ["Codec", "Anchor", "Metric", "Image"]
    headers += [f"BD-rate, {RANGE_LABELS[r]} (%)" for r in RANGES]
    headers += ["Outlier |BD| > 100 %", "Overlap < 75 %"]
    write_header(ws, 1, headers)
    row = 2
    for r in bd:
        images = sorted({i for c in r.cells.values() for i in c.per_image})
        for image in images:
            values: list[Any] = [r.codec, r.anchor, r.metric.label, image]
            values += [r.cells[b].per_image.get(image) for b in RANGES]
            outlier = any(image in r.cells[b].outliers for b in RANGES)
            low = any(image in r.cells[b].low_overlap for b in RANGES)
            values += [outlier, low]
            write_row(ws, row, values, [None, None, None, None, "pct", "pct", "pct"])
            for column, flag in ((8, outlier), (9, low)):
                if flag:
                    ws.cell(row=row, column=column).fill = FLAG_FILL
            row += 1
    ws.freeze_panes = "E2"
    fit_columns(ws)
    del method


def _results(ws: Worksheet, data: ReportData, codec: str) -> None:
    rows = sorted(data.rows[codec], key=lambda r: (r["image"], r["target_bpp"]))
    columns = [c for c in RESULT_COLUMNS if any(r.get(c[0]) is not None for r in rows)]
    knob = rows[0].get("knob_name") if rows else None
    headers = [f"Knob value ({knob})" if c[0] == "knob_value" and knob else c[1] for c in columns]
    write_header(ws, 1, headers)
    formats = [c[2] or None for c in columns]
    for i, r in enumerate(rows, start=2):
        values = []
        for column, _, _ in columns:
            value = r.get(column)
            values.append(bool(value) if column == "in_tolerance" and value is not None else value)
        write_row(ws, i, values, formats)
    ws.freeze_panes = "B2"
    fit_columns(ws)


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for package in ("nic-ctc", "openpyxl", "matplotlib", "numpy", "scipy", "torch"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def _conditions(
    ws: Worksheet, data: ReportData, method: str, aggregation: str, command: str
) -> None:
    write_header(ws, 1, ["Field", "Value"])
    ws.freeze_panes = "A2"
    row = 2

    def section(text: str) -> None:
        nonlocal row
        row += 1
        ws.cell(row=row, column=1, value=text).font = SECTION_FONT
        row += 1

    def pair(key: str, value: Any) -> None:
        nonlocal row
        write_row(ws, row, [key, value])
        row += 1

    section("Report")
    pair("generated at (UTC)", datetime.now(UTC).isoformat(timespec="seconds"))
    pair("command", command)
    pair("BD method", METHOD_LABELS[method])
    pair("BD aggregation (headline)", AGGREGATION_LABELS[aggregation])
    pair("BD ranges", "; ".join(f"{r}: {RANGE_LABELS[r]}" for r in RANGES))
    for key, value in _versions().items():
        pair(f"software: {key}", value)

    record = data.record()
    section("Condition")
    pair("run folder", str(data.folder))
    pair("condition hash", data.condition_hash)
    for key, value in flatten(data.condition):
        pair(f"condition: {key}", value)

    section("Codecs (exact versions)")
    for codec, text in data.versions.items():
        source = data.anchor_sources.get(codec, "this run")
        frozen = sorted(
            {str(r.get("bitstream")) for r in data.rows[codec]
             if str(r.get("bitstream")).startswith("frozen:")}
        )  # fmt: skip
        if frozen:  # rows the run took from frozen anchor results (ctc.frozen)
            source = f"{source}; rows from {', '.join(frozen)}"
        pair(codec, f"{text} [{source}]")

    section("Dataset")
    dataset = record.get("dataset", {})
    pair("name", dataset.get("name"))
    for image, digest in sorted(dataset.get("pixel_sha256", {}).items()):
        pair(f"pixel sha256: {image}", digest)

    section("Run platform and tools")
    for key in ("ctc_version", "python", "platform", "machine", "cpu_count", "jobs"):
        pair(key, record.get(key))
    for key, value in record.get("tools", {}).items():
        pair(f"tool: {key}", value)

    section("Runs in the folder")
    for run in data.runs:
        pair(
            f"run {run['id']}",
            f"{run['condition']} ({run['condition_hash'][:12]}), {run['status']}, "
            f"{run['started_at']} – {run['finished_at'] or ''}",
        )
    fit_columns(ws, maximum=100)
