"""The report workbook: Summary, BD per image, one results sheet per codec, RD data and charts,
Complexity and Conditions (openpyxl), laid out like the JVET / FVC / JPEG AI reporting
templates that users otherwise fill by hand.

Every number is stored as a number with a display format; booleans are Excel booleans shown
TRUE/FALSE; units are in the headers; header rows are frozen and repeat on every printed page.
Codecs appear by their short names in tables; the Summary, the Conditions sheet, the charts'
legends and the results sheets' page headers also say what each one is (ReportData.label: the
encoder, its key settings, whether it stands in for a reference encoder).
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
from openpyxl.styles import Alignment
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from ctc.clic.evaluate import Outcome
from ctc.report.charts import CHARTS_WIDTH, add_rd_charts
from ctc.report.clic_sheet import write_clic
from ctc.report.complexity_sheet import write_complexity
from ctc.report.data import BDRange, ReportData
from ctc.report.style import (
    FLAG_FILL,
    FORMATS,
    HEADER_FILL,
    LINE_HEIGHT,
    REGULAR,
    SECTION_FONT,
    WRAP,
    fit_columns,
    flatten,
    print_setup,
    title,
    wrap_rows,
    wrapped_lines,
    write_header,
    write_row,
)
from ctc.report.summary import BDCell, BDRow, ClassBDRow, CodecSummary

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
    ("msssim_yuv", "MS-SSIM YUV (linear)", "lin"),
    ("msssim_yuv_db", "MS-SSIM YUV (dB)", "db"),
    ("psnr_hvs", "PSNR-HVS (dB)", "db"),
    ("psnr_hvsm", "PSNR-HVS-M (dB)", "db"),
    ("vif_p", "VIF-P", "lin"),
    ("iw_ssim", "IW-SSIM", "lin"),
    ("fsim", "FSIM", "lin"),
    ("fsimc", "FSIMc", "lin"),
    ("nlpd", "NLPD (lower is better)", "lin"),
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
    class_bd: Sequence[ClassBDRow] = (),
    clic: Sequence[Outcome] = (),
) -> dict[str, str]:
    """Write the workbook; returns the sheet name of each codec's results sheet. class_bd: the
    BD rows per class of a test set with classes (summary.class_bd_rows), on a "BD per class"
    sheet after "BD per image"; none: no such sheet. clic: the CLIC outcomes of a CLIC
    condition (ctc.clic.evaluate.judge), on a "CLIC" sheet after the Summary."""
    wb = Workbook()
    summary = wb.active
    summary.title = "Summary"
    _summary(summary, data, anchors, bd, summaries, method, aggregation)
    if clic:
        write_clic(wb.create_sheet("CLIC"), clic, data.condition)
    _bd_per_image(wb.create_sheet("BD per image"), bd, data.bd_ranges)
    if class_bd:
        write_bd_per_class(wb.create_sheet("BD per class"), class_bd, data.bd_ranges)
    results_sheets = {}
    for codec in data.codecs:
        name = sheet_name(f"Results {codec}", wb.sheetnames)
        results_sheets[codec] = name
        _results(wb.create_sheet(name), data, codec)
    legend_rows = add_rd_charts(wb, data, anchors)
    write_complexity(wb.create_sheet("Complexity"), complexity, complexity_notes)
    _conditions(wb.create_sheet("Conditions"), data, method, aggregation, command)
    _finish(wb, data, results_sheets, legend_rows)
    wb.save(path)
    return results_sheets


PRINT_TITLES = {
    # sheet: (rows repeated on every printed page, columns repeated on pages across)
    "Summary": ("4:5", "A:C"),
    "BD per image": ("1:1", "A:D"),
    "BD per class": ("1:1", "A:F"),
    "RD data": ("1:1", None),
    "Complexity": ("2:2", "A:A"),
    "Conditions": ("1:1", "A:A"),
}
RESULTS_TITLES = ("1:1", "A:B")  # the header row; Image and Target (bpp)


def _finish(
    wb: Workbook, data: ReportData, results_sheets: dict[str, str], legend_rows: int
) -> None:
    """What every sheet gets, whoever wrote it: booleans shown TRUE/FALSE (LibreOffice shows an
    Excel boolean without that format as 1/0 in some cells), and the page setup."""
    run = f"condition {data.condition.get('name', '')}, run {data.folder.name}"
    codec_of = {sheet: codec for codec, sheet in results_sheets.items()}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, bool):
                    cell.number_format = FORMATS["bool"]
        if ws.title != "RD charts":
            _keep_text_on_the_page(ws)
            fit_header_rows(ws)
        if ws.title in codec_of:
            codec = codec_of[ws.title]
            what = data.label(codec) or data.versions.get(codec, "")
            header = f"{codec}: {what}" if what else codec
            print_setup(ws, *RESULTS_TITLES, header=_shorten(header, 110))
        elif ws.title == "RD charts":  # the lines that name the codecs on every page
            print_setup(ws, f"1:{legend_rows}", header=run, width=CHARTS_WIDTH, gridlines=False)
        else:
            rows, columns = PRINT_TITLES.get(ws.title, (None, None))
            print_setup(ws, rows, columns, header=run)


def _keep_text_on_the_page(ws: Worksheet) -> None:
    """Text that would run past the sheet's last column (LibreOffice prints as far as text runs,
    at a smaller scale) wraps instead, in its cell merged with the empty cells to its right."""
    last = ws.max_column
    width = {c: (ws.column_dimensions[get_column_letter(c)].width or 8.43) + 0.71
             for c in range(1, last + 1)}  # fmt: skip
    in_merged = {
        (r, c)
        for m in ws.merged_cells.ranges
        for r in range(m.min_row, m.max_row + 1)
        for c in range(m.min_col, m.max_col + 1)
    }
    long = []
    for row in ws.iter_rows():
        for cell in row:
            if not isinstance(cell.value, str) or (cell.row, cell.column) in in_merged:
                continue
            if cell.alignment is not None and cell.alignment.wrap_text:
                continue
            font = cell.font
            factor = REGULAR * ((font.size or 11) / 11) * (1.1 if font.b else 1.0)
            room = sum(width[c] for c in range(cell.column, last + 1))
            if len(cell.value) * factor > room:
                long.append((cell, factor))
    for cell, factor in long:
        end = cell.column
        while end < last and ws.cell(cell.row, end + 1).value is None:
            if (cell.row, end + 1) in in_merged:
                break
            end += 1
        if end > cell.column:
            ws.merge_cells(start_row=cell.row, start_column=cell.column, end_row=cell.row,
                           end_column=end)  # fmt: skip
        cell.alignment = Alignment(wrap_text=True, vertical="top",
                                   horizontal=cell.alignment.horizontal)  # fmt: skip
        room = sum(width[c] for c in range(cell.column, end + 1))
        lines = wrapped_lines(cell.value, room, factor)
        size = (cell.font.size or 11) / 11
        height = ws.row_dimensions[cell.row].height or 15
        ws.row_dimensions[cell.row].height = max(height, LINE_HEIGHT * size * lines + 3)


def _shorten(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1].rstrip() + "…"


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
    ranges = data.bd_ranges
    flags = _summary_flag_columns(ranges)
    first, second = ["Codec", "Anchor", "Metric", "Images (count)"], ["", "", "", ""]
    order = [aggregation] + [a for a in AGGREGATION_LABELS if a != aggregation]
    short = {"per_image_mean": "per-image mean", "average_curve": "average curve"}
    for bpp_range in ranges:
        for i, agg in enumerate(order):
            first.append(bpp_range.label if i == 0 else "")
            second.append(f"BD-rate, {short[agg]} (%)" + (" ★" if agg == aggregation else ""))
    first += ["Outliers |BD| > 100 % (images)", "Overlap < 75 % (images)", "Note"]
    second += ["", "", ""]
    write_header(ws, 4, first)
    write_header(ws, 5, second)
    for column in range(5, 5 + 2 * len(ranges), 2):
        ws.merge_cells(start_row=4, start_column=column, end_row=4, end_column=column + 1)
    for column in (1, 2, 3, 4, *flags):
        ws.merge_cells(start_row=4, start_column=column, end_row=5, end_column=column)
    row = 6
    in_full = []
    for r in bd:
        values: list[Any] = [r.codec, r.anchor, r.metric.label, r.cells["all"].images]
        formats: list[str | None] = [None, None, None, "int"]
        outliers, low, notes = set(), set(), []
        for bpp_range in ranges:
            cell = r.cells[bpp_range.name]
            pair = {"per_image_mean": cell.per_image_mean, "average_curve": cell.average_curve}
            values += [pair[a] for a in order]
            formats += ["pct", "pct"]
            outliers |= set(cell.outliers)
            low |= set(cell.low_overlap)
            if cell.error:
                notes.append(f"{bpp_range.name}: {cell.error}")
            if cell.left_out_note:
                notes.append(f"{bpp_range.name}: {cell.left_out_note}")
        if r.left_out:
            notes.append(f"left out (metric missing): {', '.join(r.left_out)}")
        values += [_names(outliers, r.cells["all"].images), _names(low, r.cells["all"].images)]
        note = "; ".join(notes)
        if len(note) > NOTE_CHARS:  # a readable row; the whole note is under the tables
            in_full.append(f"{len(in_full) + 1}. {r.codec} vs {r.anchor}, {r.metric.label}: {note}")
            note = f"{note[:NOTE_CHARS].rstrip()}… (note {len(in_full)} below)"
        values.append(note)
        formats += [None, None, None]
        write_row(ws, row, values, formats)
        for column in flags[:2]:
            if ws.cell(row=row, column=column).value:
                ws.cell(row=row, column=column).fill = FLAG_FILL
        row += 1
    if not bd:
        ws.cell(row=row, column=1, value="No codec other than the anchors in this run.")
        row += 1
    ws.freeze_panes = "E6"

    row = _codecs_block(ws, row + 1, data, anchors, flags[-1])
    row += 1
    title(ws, row, "Rate matching and run times", SECTION_FONT)
    row += 1
    within = "In tolerance"
    if data.condition.get("tolerance_scope") == "dataset":  # sweep points, no image judged
        within = "Within the sweep window"
    headers = [
        "Codec", "Image × target pairs (count)", f"{within} (count)", f"{within} (%)",
        "Encode time, sum (s)", "Decode time, sum (s)",
    ]  # fmt: skip
    for anchor in anchors:
        headers += [
            f"EncT vs {anchor} (ratio, geo. mean)", f"DecT vs {anchor} (ratio, geo. mean)",
            f"Pairs compared with {anchor} (count)",
        ]  # fmt: skip
    write_header(ws, row, headers)
    row += 1
    for s in summaries:
        values = [
            s.codec, s.pairs, s.in_tolerance, 100 * s.share, s.encode_seconds, s.decode_seconds,
        ]  # fmt: skip
        formats = [None, "int", "int", "pct", "sec", "sec"]
        for anchor in anchors:
            values += [s.enc_ratio[anchor], s.dec_ratio[anchor], s.ratio_pairs[anchor]]
            formats += ["ratio", "ratio", "int"]
        write_row(ws, row, values, formats)
        row += 1
    time_notes = _time_notes(summaries, anchors)
    for heading, notes in (
        ("Notes", data.notes),
        ("Run times", time_notes),
        ("BD notes in full", in_full),
    ):
        if notes:
            row += 1
            title(ws, row, heading, SECTION_FONT)
            for note in notes:
                row += 1
                ws.cell(row=row, column=1, value=note).alignment = WRAP
                ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=flags[-1])
    widths = _summary_widths(flags)
    for column in range(1, max(flags[-1], len(headers)) + 1):
        ws.column_dimensions[get_column_letter(column)].width = widths.get(column, 10)
    wrap_rows(ws, 6, 5 + len(bd), (1, 2, *flags))
    _fit_merged_rows(ws)


def _summary_flag_columns(ranges: Sequence[BDRange]) -> tuple[int, int, int]:
    """The Summary's outlier, overlap and note columns: after two BD-rate columns per range."""
    first = 5 + 2 * len(ranges)
    return first, first + 1, first + 2


def _summary_widths(flags: tuple[int, int, int]) -> dict[int, int]:
    """Summary column widths (others 10): with FVC's two ranges and all points the BD table
    prints about 170 characters wide, a landscape page at 87 %, where its numbers and wrapped
    headers stay readable."""
    outliers, overlap, note = flags
    return {1: 11, 2: 11, 3: 14, 4: 9, outliers: 16, overlap: 16, note: 30}


NOTE_CHARS = 110
"""The longest note a Summary row shows; longer ones are cut there and listed whole below."""


def fit_header_rows(ws: Worksheet) -> None:
    """Header rows (shaded cells) tall enough for their wrapped texts, on any sheet; a header
    merged across columns wraps in their width, one merged down rows is left as it is."""

    def width(first: int, last: int) -> float:
        return sum((ws.column_dimensions[get_column_letter(c)].width or 8.43) + 0.71
                   for c in range(first, last + 1)) - 0.71  # fmt: skip

    span: dict[tuple[int, int], float | None] = {}
    for m in ws.merged_cells.ranges:
        for r in range(m.min_row, m.max_row + 1):
            for c in range(m.min_col, m.max_col + 1):
                span[(r, c)] = None  # covered, or merged down: not sized here
        if m.min_row == m.max_row:
            span[(m.min_row, m.min_col)] = width(m.min_col, m.max_col)
    needed: dict[int, int] = {}
    for row in ws.iter_rows():
        for c in row:
            if not c.value or c.fill != HEADER_FILL:
                continue
            room = span.get((c.row, c.column), width(c.column, c.column))
            if room is None:
                continue
            lines = wrapped_lines(str(c.value).replace("-", "- "), room, 1.1)
            needed[c.row] = max(needed.get(c.row, 1), lines)
    for row, lines in needed.items():
        height = ws.row_dimensions[row].height or 15
        ws.row_dimensions[row].height = max(height, LINE_HEIGHT * lines + 4)


LEFT_WRAP = Alignment(horizontal="left", vertical="top", wrap_text=True)


def _codecs_block(
    ws: Worksheet, row: int, data: ReportData, anchors: Sequence[str], table_end: int
) -> int:
    """The Summary's list of what each codec name stands for: codec, role, what runs (merged)
    and exact version (merged up to `table_end`, the BD table's last column, so the block is as
    wide as the table whatever the condition's ranges); returns the next free row."""
    columns = ((1, 1), (2, 2), (3, 6), (7, max(7, table_end)))
    row += 1
    title(ws, row, "Codecs: what each name stands for", SECTION_FONT)
    row += 1
    headers = ["Codec", "Role", "What runs (encoder, key settings)", "Exact version [source]"]
    for (first, last), text in zip(columns, headers, strict=True):
        write_header(ws, row, [text], column=first)
        if last > first:
            ws.merge_cells(start_row=row, start_column=first, end_row=row, end_column=last)
    row += 1
    for codec in data.codecs:
        role = "anchor" if codec in anchors else "tested"
        source = data.anchor_sources.get(codec)
        version = data.versions.get(codec, "")
        values = [
            codec, role, data.label(codec) or "—",
            f"{version} [frozen rows: {Path(source).name}]" if source else version,
        ]  # fmt: skip
        for (first, last), value in zip(columns, values, strict=True):
            cell = ws.cell(row=row, column=first, value=value)
            cell.alignment = WRAP
            if last > first:
                ws.merge_cells(start_row=row, start_column=first, end_row=row, end_column=last)
        row += 1
    return row


def _fit_merged_rows(ws: Worksheet) -> None:
    """Rows of wrapped text in merged cells tall enough for it (no spreadsheet sizes them)."""
    for merged in ws.merged_cells.ranges:
        if merged.min_row != merged.max_row:
            continue
        cell = ws.cell(row=merged.min_row, column=merged.min_col)
        if not isinstance(cell.value, str) or not (cell.alignment and cell.alignment.wrap_text):
            continue
        width = sum(
            (ws.column_dimensions[get_column_letter(c)].width or 8.43) + 0.7
            for c in range(merged.min_col, merged.max_col + 1)
        )
        lines = wrapped_lines(cell.value, width, REGULAR)
        height = ws.row_dimensions[merged.min_row].height or 15
        ws.row_dimensions[merged.min_row].height = max(height, LINE_HEIGHT * lines + 3)


def _names(images: set[str], total: int, most: int = 6) -> str:
    """Flagged images by name, or their count when there are many (listed in BD per image)."""
    names = sorted(i for i in images if not i.startswith("<"))
    extra = sorted(i for i in images if i.startswith("<"))
    if len(names) > most:
        return ", ".join([f"{len(names)} of {total} images (see BD per image)", *extra])
    return ", ".join(names + extra)


def _left_out_text(cell: BDCell, image: str) -> str | None:
    """ "left out: REASON" for an image the range's per-image mean leaves out, else None."""
    reason = cell.left_out.get(image)
    return f"left out: {reason}" if reason else None


def _time_notes(summaries: Sequence[CodecSummary], anchors: Sequence[str]) -> list[str]:
    """What the time columns compare, and which ratios use times from outside this run."""
    notes = [
        "Encode / decode time: one encode at the final knob value and one decode per image and "
        "target (EncT / DecT as in JVET's CTC); the rate-matching search is in each results "
        "sheet's rate-control time, not here."
    ]
    for anchor in anchors:
        foreign = max((s.foreign_times.get(anchor, 0) for s in summaries), default=0)
        if foreign:
            notes.append(
                f"EncT / DecT vs {anchor}: {anchor}'s times come from frozen results or a CSV "
                "file (measured on another day, maybe on another machine), not from this run: "
                "the ratio is indicative only; run it with --no-frozen to time it here."
            )
    return notes


def _bd_per_image(ws: Worksheet, bd: Sequence[BDRow], ranges: Sequence[BDRange]) -> None:
    """One line per codec, anchor, metric and image: its BD-rate over each range (or why the
    range's per-image mean leaves it out), and whether it is flagged in any range."""
    headers = ["Codec", "Anchor", "Metric", "Image"]
    headers += [f"BD-rate, {b.label} (%)" for b in ranges]
    headers += ["Outlier |BD| > 100 %", "Overlap < 75 %"]
    write_header(ws, 1, headers)
    formats = [None] * 4 + ["pct"] * len(ranges)
    flags = (5 + len(ranges), 6 + len(ranges))
    row = 2
    for r in bd:
        cells = [r.cells[b.name] for b in ranges]
        images = sorted({i for c in cells for i in (*c.per_image, *c.left_out)})
        for image in images:
            values: list[Any] = [r.codec, r.anchor, r.metric.label, image]
            values += [c.per_image.get(image, _left_out_text(c, image)) for c in cells]
            outlier = any(image in c.outliers for c in cells)
            low = any(image in c.low_overlap for c in cells)
            values += [outlier, low]
            write_row(ws, row, values, formats)
            for column, flag in zip(flags, (outlier, low), strict=True):
                if flag:
                    ws.cell(row=row, column=column).fill = FLAG_FILL
            row += 1
    ws.freeze_panes = "E2"
    fit_columns(ws)


def write_bd_per_class(
    ws: Worksheet, class_bd: Sequence[ClassBDRow], ranges: Sequence[BDRange]
) -> None:
    """One line per class, codec, anchor and metric, then the overall lines (class "all"):
    the class's images, the per-image-mean and average-curve BD-rates over each of `ranges`
    (the report's, ReportData.bd_ranges; each class's images taken as a dataset of their own),
    and why a value is missing or which images are left out or flagged."""
    headers = ["Class", "Description", "Codec", "Anchor", "Metric", "Images"]
    headers += [f"BD-rate per-image mean, {b.label} (%)" for b in ranges]
    headers += [f"BD-rate average curve, {b.label} (%)" for b in ranges]
    headers += ["Notes"]
    write_header(ws, 1, headers)
    formats = [None] * 5 + ["int"] + ["pct"] * (2 * len(ranges)) + [None]
    for n, item in enumerate(class_bd, start=2):
        r, c = item.row, item.image_class
        cells = [r.cells[b.name] for b in ranges]
        values: list[Any] = [
            item.class_name, c.description if c else "every image", r.codec, r.anchor,
            r.metric.label, cells[-1].images,
        ]  # fmt: skip
        values += [cell.per_image_mean for cell in cells]
        values += [cell.average_curve for cell in cells]
        notes = []
        if r.left_out:
            notes.append(f"without {r.metric.label} for both: {', '.join(r.left_out)}")
        for b, cell in zip(ranges, cells, strict=True):
            flagged = sorted({*cell.outliers, *cell.low_overlap})
            what = [x for x in (cell.error, cell.left_out_note) if x]
            if flagged:
                what.append(f"flagged: {', '.join(flagged)}")
            if what:
                notes.append(f"{b.name}: {'; '.join(what)}")  # as the Summary's notes
        values.append(" | ".join(notes) or None)
        write_row(ws, n, values, formats)
    ws.freeze_panes = "G2"
    fit_columns(ws)


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


CONDITION_FIELDS = {
    "tolerance_scope": "tolerance.scope",
    "max_encodes": "rate_control.max_encodes",
    "matrix": "colour.matrix",
    "bit_depth": "colour.bit_depth",
}
"""A run record's condition fields (ctc.condition.Condition) as a condition file names them."""


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
    pair("BD ranges", "; ".join(b.label for b in data.bd_ranges))
    for key, value in _versions().items():
        pair(f"software: {key}", value)

    record = data.record()
    section("Condition")
    pair("run folder", str(data.folder))
    pair("condition hash", data.condition_hash)
    for key, value in flatten(data.condition):
        pair(f"condition: {CONDITION_FIELDS.get(key, key)}", value)

    section("Codecs (what runs)")
    for codec in data.codecs:
        pair(codec, data.label(codec) or "—")

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
    for key in ("ctc_version", "python", "platform", "machine", "cpu_count", "jobs", "threads"):
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
    wrap_rows(ws, 2, ws.max_row, (2,))  # long values wrap rather than spill past the page
    for (cell,) in ws.iter_rows(min_row=2, min_col=2, max_col=2):
        cell.alignment = LEFT_WRAP
