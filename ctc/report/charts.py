"""Native Excel scatter charts of the dataset-average RD curves, one chart per metric with every
codec and anchor, drawn from an "RD data" sheet (so that a user can restyle or extend them).

As the PNG plots: a logarithmic rate axis, each codec in its own colour and marker
(style.codec_styles, the same in both), anchors dashed. The legends give the short names (a
long entry overprints its neighbours in LibreOffice's legends); the lines above the charts,
repeated on every printed page, say what each name is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from openpyxl import Workbook
from openpyxl.chart import Reference, ScatterChart, Series
from openpyxl.chart.axis import ChartLines
from openpyxl.chart.marker import Marker
from openpyxl.chart.shapes import GraphicalProperties
from openpyxl.drawing.line import LineProperties
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.pagebreak import Break

from ctc.report.data import ReportData
from ctc.report.style import (
    SECTION_FONT,
    CodecStyle,
    codec_styles,
    fit_columns,
    legend_entry,
    write_header,
    write_row,
)
from ctc.report.summary import average_curve

CHART_WIDTH_CM, CHART_HEIGHT_CM = 16.0, 11.5
CHART_ROWS, CHART_COLUMNS = 24, 10  # grid cells one chart takes on the charts sheet
CHARTS_WIDTH = 2 * CHART_COLUMNS * (8.43 + 0.71) + 2  # two charts side by side, as printed
RATE_LOG_BASE = 2  # ticks at 1/16, 1/8, ... 1, 2 bpp: near the CTC targets 0.06 ... 2
LINE_WIDTH_EMU = 22225  # 1.75 pt


def rate_axis_limits(rates: Sequence[float]) -> tuple[float, float]:
    """The log-axis range: powers of RATE_LOG_BASE around the rates (positive ones)."""
    positive = [r for r in rates if r > 0 and math.isfinite(r)]
    if not positive:
        return 1 / 16, 2.0
    low = RATE_LOG_BASE ** math.floor(math.log(min(positive), RATE_LOG_BASE) + 1e-9)
    high = RATE_LOG_BASE ** math.ceil(math.log(max(positive), RATE_LOG_BASE) - 1e-9)
    return float(low), float(high if high > low else low * RATE_LOG_BASE)


def add_rd_charts(wb: Workbook, data: ReportData, anchors: Sequence[str] = ()) -> int:
    """Write the "RD data" sheet and the "RD charts" sheet that plots it; returns the number of
    rows above the charts (to repeat on every printed page)."""
    ws = wb.create_sheet("RD data")
    charts = wb.create_sheet("RD charts")
    write_header(
        ws, 1, ["Codec", "Target (bpp)", "Rate, mean (bpp)", "Quality, mean", "Images (count)"]
    )
    ws.freeze_panes = "A2"
    charts.cell(
        row=1,
        column=1,
        value="Dataset-average RD curves (mean bpp and mean quality over the images at each "
        "target; MS-SSIM averaged linearly, then in dB) on a logarithmic rate axis; anchors "
        "dashed. Data: sheet 'RD data'.",
    )
    top = 1
    for codec in data.codecs:
        top += 1
        what = data.label(codec) or data.versions.get(codec, "")
        charts.cell(row=top, column=1, value=legend_entry(codec, what, False))
    first_chart_row = top + 2
    styles = codec_styles(data.codecs)
    row = 2
    for index, metric in enumerate(data.metrics()):
        row += 1
        ws.cell(row=row, column=1, value=metric.axis).font = SECTION_FONT
        row += 1
        chart = ScatterChart()
        chart.title = f"{metric.axis}, dataset average"
        chart.style = 2
        chart.scatterStyle = "lineMarker"
        chart.x_axis.title = "Rate (bpp, logarithmic)"
        chart.y_axis.title = metric.axis
        chart.x_axis.delete = False
        chart.y_axis.delete = False
        chart.x_axis.majorGridlines = ChartLines()
        chart.width, chart.height = CHART_WIDTH_CM, CHART_HEIGHT_CM
        chart.legend.position = "b"
        qualities, rates = [], []
        for codec in data.codecs:
            points = average_curve(data.rows[codec], metric)
            if not points:
                continue
            first = row
            for p in points:
                write_row(
                    ws, row, [codec, p.target, p.bpp, p.quality, p.images],
                    [None, "bpp", "bpp", "db", "int"],
                )  # fmt: skip
                qualities.append(p.quality)
                rates.append(p.bpp)
                row += 1
            x = Reference(ws, min_col=3, min_row=first, max_row=row - 1)
            y = Reference(ws, min_col=4, min_row=first, max_row=row - 1)
            title = legend_entry(codec, "", codec in anchors)
            chart.series.append(_series(y, x, title, styles[codec], codec in anchors))
        if qualities:
            chart.y_axis.scaling.min = math.floor(min(qualities))
            chart.y_axis.scaling.max = math.ceil(max(qualities))
        chart.x_axis.scaling.logBase = RATE_LOG_BASE
        chart.x_axis.majorUnit = RATE_LOG_BASE  # a factor on a log axis: a tick per power
        chart.x_axis.scaling.min, chart.x_axis.scaling.max = rate_axis_limits(rates)
        chart.x_axis.number_format = "General"
        chart.y_axis.number_format = "0"
        place_row = first_chart_row + (index // 2) * CHART_ROWS
        place_col = 1 + (index % 2) * CHART_COLUMNS
        charts.add_chart(chart, f"{get_column_letter(place_col)}{place_row}")
        if index % 2 == 1:  # one row of two charts per printed page
            charts.row_breaks.append(Break(id=place_row + CHART_ROWS - 1))
    fit_columns(ws)
    return top


def _series(y: Reference, x: Reference, title: str, style: CodecStyle, anchor: bool) -> Series:
    series = Series(y, x, title=title)
    colour = style.colour
    series.graphicalProperties = GraphicalProperties(
        ln=LineProperties(solidFill=colour, w=LINE_WIDTH_EMU, prstDash="dash" if anchor else None)
    )
    series.marker = Marker(symbol=style.chart_marker, size=7)
    series.marker.graphicalProperties = GraphicalProperties(
        solidFill=colour, ln=LineProperties(solidFill=colour)
    )
    series.smooth = False
    return series
