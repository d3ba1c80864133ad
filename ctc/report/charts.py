"""Native Excel scatter charts of the dataset-average RD curves, one chart per metric with every
codec and anchor, drawn from an "RD data" sheet (so that a user can restyle or extend them)."""

from __future__ import annotations

import math

from openpyxl import Workbook
from openpyxl.chart import Reference, ScatterChart, Series
from openpyxl.chart.marker import Marker
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.pagebreak import Break

from ctc.report.data import ReportData
from ctc.report.style import SECTION_FONT, fit_columns, write_header, write_row
from ctc.report.summary import average_curve

MARKERS = ("circle", "square", "triangle", "diamond", "x", "star", "plus", "dash")
CHART_WIDTH_CM, CHART_HEIGHT_CM = 16.0, 9.5
CHART_ROWS, CHART_COLUMNS = 20, 10  # grid cells one chart takes on the charts sheet


def add_rd_charts(wb: Workbook, data: ReportData) -> None:
    """Write the "RD data" sheet and the "RD charts" sheet that plots it."""
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
        "target; MS-SSIM averaged linearly, then in dB). Data: sheet 'RD data'.",
    )
    row = 2
    for index, metric in enumerate(data.metrics()):
        row += 1
        ws.cell(row=row, column=1, value=metric.axis).font = SECTION_FONT
        row += 1
        chart = ScatterChart()
        chart.title = metric.axis
        chart.style = 2
        chart.x_axis.title = "Rate (bpp)"
        chart.y_axis.title = metric.axis
        chart.x_axis.delete = False
        chart.y_axis.delete = False
        chart.x_axis.scaling.min = 0
        chart.width, chart.height = CHART_WIDTH_CM, CHART_HEIGHT_CM
        chart.legend.position = "b"
        qualities = []
        for n, codec in enumerate(data.codecs):
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
                row += 1
            x = Reference(ws, min_col=3, min_row=first, max_row=row - 1)
            y = Reference(ws, min_col=4, min_row=first, max_row=row - 1)
            series = Series(y, x, title=codec)
            series.marker = Marker(symbol=MARKERS[n % len(MARKERS)], size=6)
            series.smooth = False
            chart.series.append(series)
        if qualities:
            chart.y_axis.scaling.min = math.floor(min(qualities))
            chart.y_axis.scaling.max = math.ceil(max(qualities))
        chart.x_axis.number_format = "0.0"
        chart.y_axis.number_format = "0"
        place_row = 3 + (index // 2) * CHART_ROWS
        place_col = 1 + (index % 2) * CHART_COLUMNS
        charts.add_chart(chart, f"{get_column_letter(place_col)}{place_row}")
        if index % 4 == 3:  # two rows of charts per printed page
            charts.row_breaks.append(Break(id=place_row + CHART_ROWS - 1))
    fit_columns(ws)
