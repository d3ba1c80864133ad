"""Cell styles and small writing helpers shared by the workbook's sheets (openpyxl)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

FONT_NAME = "Calibri"  # openpyxl's default; a font without a name prints in a serif face
HEADER_FONT = Font(name=FONT_NAME, bold=True)
TITLE_FONT = Font(name=FONT_NAME, bold=True, size=13)
SECTION_FONT = Font(name=FONT_NAME, bold=True, size=11, color="1F3864")
HEADER_FILL = PatternFill("solid", start_color="DDEBF7", end_color="DDEBF7")
FLAG_FILL = PatternFill("solid", start_color="FCE4D6", end_color="FCE4D6")
WRAP = Alignment(wrap_text=True, vertical="top")
TOP = Alignment(vertical="top")
HEADER_ALIGN = Alignment(wrap_text=True, vertical="center", horizontal="center")

FORMATS = {
    "int": "#,##0",
    "bpp": "0.0000",
    "pct": "0.00",
    "db": "0.000",
    "ratio": "0.000",
    "sec": "0.0000",
    "lin": "0.000000",
    "mb": "0.00",
    "k": "0.000",
    "bool": '"TRUE";"TRUE";"FALSE"',
}
"""Display formats by name. "bool": booleans are stored as Excel booleans and shown TRUE/FALSE
everywhere; the explicit format makes LibreOffice show them so too (without it, it shows some
boolean cells of a column as 1/0)."""


def cell_value(value: Any) -> Any:
    """A value openpyxl writes as a number where it is one; NaN and inf become empty/text;
    numpy booleans and numbers become Python ones."""
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value


def write_header(
    ws: Worksheet, row: int, headers: Sequence[str], column: int = 1, height: float = 32
) -> None:
    """One header row: bold, shaded, wrapped, tall enough for two lines (LibreOffice does not
    grow a row for wrapped text that openpyxl wrote)."""
    for offset, text in enumerate(headers):
        cell = ws.cell(row=row, column=column + offset, value=text)
        cell.font, cell.fill, cell.alignment = HEADER_FONT, HEADER_FILL, HEADER_ALIGN
    ws.row_dimensions[row].height = height


def write_row(
    ws: Worksheet,
    row: int,
    values: Sequence[Any],
    formats: Sequence[str | None] | None = None,
    column: int = 1,
) -> None:
    """One data row; `formats` names FORMATS keys (None: general)."""
    for offset, value in enumerate(values):
        cell = ws.cell(row=row, column=column + offset, value=cell_value(value))
        fmt = formats[offset] if formats and offset < len(formats) else None
        if isinstance(cell.value, bool):
            fmt = "bool"
        if fmt:
            cell.number_format = FORMATS[fmt]


def title(ws: Worksheet, row: int, text: str, font: Font = TITLE_FONT) -> None:
    ws.cell(row=row, column=1, value=text).font = font


def fit_columns(ws: Worksheet, minimum: int = 6, maximum: int = 60, header_max: int = 16) -> None:
    """Column widths from the longest value as it is shown (a number in its display format);
    header cells (shaded) count up to header_max since they wrap, onto three lines at most,
    and their rows are made tall enough for the lines."""
    widths: dict[int, float] = {}
    headers = []
    for row in ws.iter_rows():
        for cell in row:
            if cell.value is None or type(cell).__name__ == "MergedCell":
                continue
            if cell.font is not None and cell.font.size and cell.font.size > 11:
                continue  # titles spill over empty neighbours
            if cell.fill is HEADER_FILL or cell.fill == HEADER_FILL:
                words = str(cell.value).replace("-", "- ").split() or [""]  # breaks after "-"
                longest = BOLD * max(len(w) for w in words) + 1.5
                length = min(header_max, max(longest, BOLD * len(str(cell.value)) / 3 + 1.5))
                headers.append(cell)
            else:
                length = len(shown(cell.value, cell.number_format)) + 2
            widths[cell.column] = max(widths.get(cell.column, minimum), min(length, maximum))
    for column, width in widths.items():
        ws.column_dimensions[get_column_letter(column)].width = math.ceil(width)
    for cell in headers:
        width = ws.column_dimensions[get_column_letter(cell.column)].width
        lines = wrapped_lines(str(cell.value).replace("-", "- "), width, BOLD)
        height = ws.row_dimensions[cell.row].height or 15
        ws.row_dimensions[cell.row].height = max(height, LINE_HEIGHT * lines + 4)


BOLD = 1.1
"""Bold text's width per character, in column-width units (a digit of the regular font)."""
REGULAR = 0.9
"""Regular text's average width per character (letters are narrower than digits)."""
LINE_HEIGHT = 14
"""Points per line of 11-point text."""


def shown(value: Any, number_format: str = "General") -> str:
    """Roughly the text a spreadsheet shows for a value in a display format."""
    if isinstance(value, bool):
        return "FALSE" if not value else "TRUE"
    if isinstance(value, (int, float)) and math.isfinite(value):
        if number_format in ("General", None):
            return f"{value:.10g}" if isinstance(value, float) else str(value)
        decimals = len(number_format.split(".")[1]) if "." in number_format else 0
        return f"{value:{',' if ',' in number_format else ''}.{decimals}f}"
    return str(value)


def wrapped_lines(text: str, width: float, factor: float = 1.0) -> int:
    """Lines that `text` wraps onto in a column `width` characters wide (greedy, by words)."""
    room = max(width - 1, 1)
    lines, used = 1, 0.0
    for paragraph in text.split("\n"):
        if used:
            lines, used = lines + 1, 0.0
        for word in paragraph.split():
            length = factor * len(word)
            if used and used + factor + length > room:
                lines, used = lines + 1, 0.0
            while length > room:  # a word longer than the column is broken
                lines, length = lines + 1, length - room
            used += (factor if used else 0) + length
    return lines


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as (dotted key, value) pairs; lists of plain values joined by commas."""
    if isinstance(value, dict):
        out = []
        for key, item in value.items():
            out += flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(value, list) and not all(isinstance(v, (int, float, str)) for v in value):
        return [(prefix, json.dumps(value))]
    if isinstance(value, list):
        return [(prefix, ", ".join(str(v) for v in value))]
    return [(prefix, value)]


# Printing. Widths are in Excel's column-width unit, about one digit of the default 11-point
# font (7 pixels at 96 dpi); a column takes its width plus about 0.7 units of padding.
PAGE_WIDTH = {"portrait": 102.0, "landscape": 149.0}
"""What one A4 page holds at 100 % between PAGE_MARGINS' left and right margins."""
PAGE_MARGINS = {"left": 0.4, "right": 0.4, "top": 0.6, "bottom": 0.5, "header": 0.25,
                "footer": 0.25}  # fmt: skip
"""Inches (openpyxl's unit): about 1 cm at the sides, room for the page header."""
MIN_SCALE = 0.75
"""The smallest print scale a sheet may get: 11-point text prints at 8.25 points or more. A
sheet wider than a page at this scale prints on several pages across, its key columns
repeated."""
DEFAULT_COLUMN_WIDTH = 8.43


def sheet_width(ws: Worksheet, last_column: int | None = None) -> float:
    """The width of columns 1..last_column (default: the last one used), padding included."""
    total = 0.0
    for column in range(1, (last_column or ws.max_column) + 1):
        dim = ws.column_dimensions.get(get_column_letter(column))
        width = dim.width if dim is not None and dim.width else DEFAULT_COLUMN_WIDTH
        total += 0.0 if dim is not None and dim.hidden else width + 0.71
    return total


def print_setup(
    ws: Worksheet,
    title_rows: str | None = None,
    title_columns: str | None = None,
    header: str = "",
    width: float | None = None,
    gridlines: bool = True,
) -> None:
    """Page setup that prints the sheet readably on A4 (and to PDF).

    Portrait where the sheet fits a portrait page at 100 %, else landscape; scaled to the page
    width, never to one page (fitToHeight 0: as many pages down as the rows need), so the text
    prints at no less than MIN_SCALE of its size; a sheet wider than that goes over several
    pages across. title_rows ("1:1", "4:5") repeat on every page, title_columns ("A:B") on the
    pages across. The page header names the sheet, `header` (the run, or what a codec is) and
    the page number. width: the printed width where cells do not show it (a charts sheet).
    """
    width = max(width or 0.0, sheet_width(ws))
    orientation = "portrait" if width <= PAGE_WIDTH["portrait"] else "landscape"
    page = PAGE_WIDTH[orientation]
    pages_wide = 1
    if width * MIN_SCALE > page:
        repeated = 0.0
        if title_columns:
            first, _, last = title_columns.partition(":")
            repeated = sheet_width(ws, ws[f"{last or first}1"].column)
        room = max(page / MIN_SCALE - repeated, page / 2)
        pages_wide = math.ceil((width - repeated) / room)
    setup = ws.page_setup
    setup.orientation = orientation
    setup.paperSize = ws.PAPERSIZE_A4
    setup.fitToWidth = pages_wide
    setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    for side, inches in PAGE_MARGINS.items():
        setattr(ws.page_margins, side, inches)
    ws.print_options.gridLines = gridlines
    if title_rows:
        ws.print_title_rows = title_rows
    if title_columns and pages_wide > 1:
        ws.print_title_cols = title_columns
    for part, text in ((ws.oddHeader.left, "&A"), (ws.oddHeader.center, header),
                       (ws.oddHeader.right, "page &P of &N")):  # fmt: skip
        part.text = text.replace("&", "&&") if part is ws.oddHeader.center else text


def wrap_rows(ws: Worksheet, first_row: int, last_row: int, columns: Sequence[int]) -> None:
    """Wrap the text of `columns` and make each row tall enough for it (LibreOffice and Excel
    do not resize rows that a file gives no height)."""
    for row in range(first_row, last_row + 1):
        lines = 1
        for column in columns:
            cell = ws.cell(row=row, column=column)
            cell.alignment = WRAP
            if cell.value is None:
                continue
            width = ws.column_dimensions[get_column_letter(column)].width or 10
            lines = max(lines, wrapped_lines(str(cell.value), width, REGULAR))
        if lines > 1:
            ws.row_dimensions[row].height = LINE_HEIGHT * lines + 3
            for cell in ws[row]:
                if cell.column not in columns:
                    cell.alignment = TOP


@dataclass(frozen=True)
class CodecStyle:
    """How one codec is drawn, the same in the native charts and the PNG plots."""

    colour: str  # RRGGBB
    chart_marker: str  # openpyxl / DrawingML marker symbol
    plot_marker: str  # matplotlib marker


CODEC_STYLES = {
    "nic": CodecStyle("0072B2", "circle", "o"),  # blue
    "bpg": CodecStyle("E69F00", "square", "s"),  # orange
    "vvc": CodecStyle("009E73", "triangle", "^"),  # green
    "vtm": CodecStyle("117733", "triangle", "v"),  # dark green: VVC too, the reference
    "jpeg": CodecStyle("555555", "diamond", "D"),  # dark grey
    "jpeg2000": CodecStyle("8C564B", "x", "x"),  # brown
    "webp": CodecStyle("CC79A7", "star", "*"),  # pink
    "avif": CodecStyle("6A3D9A", "plus", "P"),  # purple
    "jxl": CodecStyle("D55E00", "dash", "_"),  # vermilion
}
"""A fixed colour and marker per known codec, so that a codec looks the same in every report;
the colours are those of the Okabe-Ito palette (distinct for colour-blind readers too) where
it has enough."""
SPARE_COLOURS = ("56B4E9", "000000", "BCBD22", "E31A1C", "1F3864", "7F7F7F")
"""For codecs without a style of their own, in turn (sky blue, black, olive, red, navy, grey),
then again with other markers."""


def codec_styles(codecs: Sequence[str]) -> dict[str, CodecStyle]:
    """A style per codec, each colour used once where there are enough colours.

    A codec is known by its registered name: "nic:MODEL" and "bpg (bpg.csv)" (a frozen copy)
    are nic and bpg; a second codec of a known name (the frozen copy next to the run's own)
    takes a spare style.
    """
    out: dict[str, CodecStyle] = {}
    used: set[str] = set()
    for codec in codecs:
        base = codec.split(" (")[0].split(":")[0]
        style = CODEC_STYLES.get(base)
        if style is not None and style.colour not in used:
            out[codec] = style
            used.add(style.colour)
    spare = [CodecStyle(c, "", "") for c in SPARE_COLOURS if c not in used]
    shapes: dict[str, str] = {}  # chart marker -> plot marker, each chart marker once
    for known in CODEC_STYLES.values():
        shapes.setdefault(known.chart_marker, known.plot_marker)
    markers, plot_markers = list(shapes), list(shapes.values())
    n = 0
    for codec in codecs:
        if codec in out:
            continue
        turn, index = divmod(n, len(spare))  # each turn through the colours shifts the markers
        k = (index + turn) % len(markers)
        out[codec] = CodecStyle(spare[index].colour, markers[k], plot_markers[k])
        n += 1
    return out


def legend_entry(codec: str, label: str, anchor: bool) -> str:
    """A codec in a chart or plot legend: "vvc (anchor): VVenC 1.15.0-dev preset fast, ..."."""
    name = f"{codec} (anchor)" if anchor else codec
    return f"{name}: {label}" if label else name
