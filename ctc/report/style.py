"""Cell styles and small writing helpers shared by the workbook's sheets (openpyxl)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

HEADER_FONT = Font(bold=True)
TITLE_FONT = Font(bold=True, size=13)
SECTION_FONT = Font(bold=True, size=11, color="1F3864")
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
}


def cell_value(value: Any) -> Any:
    """A value openpyxl writes as a number where it is one; NaN and inf become empty/text."""
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
        if fmt:
            cell.number_format = FORMATS[fmt]


def title(ws: Worksheet, row: int, text: str, font: Font = TITLE_FONT) -> None:
    ws.cell(row=row, column=1, value=text).font = font


def fit_columns(ws: Worksheet, minimum: int = 8, maximum: int = 60, header_max: int = 18) -> None:
    """Column widths from the longest value (numbers as about 10 characters); header cells
    (shaded) count up to header_max since they wrap."""
    widths: dict[int, int] = {}
    for row in ws.iter_rows():
        for cell in row:
            if cell.value is None or type(cell).__name__ == "MergedCell":
                continue
            if cell.fill is HEADER_FILL or cell.fill == HEADER_FILL:
                length = min(header_max, max(len(w) for w in str(cell.value).split()) + 2)
                length = max(length, min(header_max, len(str(cell.value)) // 2 + 2))
            elif isinstance(cell.value, (int, float)):
                length = 11
            else:
                length = len(str(cell.value)) + 2
            if cell.font is not None and cell.font.size and cell.font.size > 11:
                continue  # titles spill over empty neighbours
            widths[cell.column] = max(widths.get(cell.column, minimum), min(length, maximum))
    for column, width in widths.items():
        ws.column_dimensions[get_column_letter(column)].width = width


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


def print_setup(ws: Worksheet) -> None:
    """Landscape A4, one page wide, so that a PDF or paper copy stays readable."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True


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
            lines = max(lines, math.ceil(len(str(cell.value)) * 1.1 / max(width - 1, 1)))
        if lines > 1:
            ws.row_dimensions[row].height = 15 * lines
            for cell in ws[row]:
                if cell.column not in columns:
                    cell.alignment = TOP
