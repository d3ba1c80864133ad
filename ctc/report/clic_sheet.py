"""The CLIC sheet of a report on a CLIC condition: each codec's verdict on the track, the
set's totals against the budget (or floors), the uniform baseline and the gain over it, then
the point chosen for each image (ctc.clic.evaluate)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from openpyxl.worksheet.worksheet import Worksheet

from ctc.clic.evaluate import Outcome
from ctc.report.style import SECTION_FONT, fit_columns, title, write_header, write_row

SUMMARY_HEADERS = (
    "Codec", "Track", "Budget (bpp)", "Budget (bytes)", "Budget rule", "Floors",
    "Total bytes", "Aggregate PSNR (dB)", "Aggregate MS-SSIM", "Verdict", "Method",
    "Uniform target (bpp)",
    "Uniform total bytes", "Uniform PSNR (dB)", "Gain over uniform (dB)",
    "Bytes saved over uniform (%)", "Why",
)  # fmt: skip
SUMMARY_FORMATS = (
    None, None, "bpp", "int", None, None, "int", "db", "lin", None, None, "bpp", "int", "db",
    "db", "pct", None,
)  # fmt: skip
CHOICE_HEADERS = (
    "Codec", "Budget (bpp)", "Image", "Target (bpp)", "Bytes", "bpp", "PSNR RGB (dB)",
    "MS-SSIM RGB",
)  # fmt: skip
CHOICE_FORMATS = (None, "bpp", None, "bpp", "int", "bpp", "db", "lin")


def write_clic(ws: Worksheet, outcomes: Sequence[Outcome], condition: Mapping[str, Any]) -> None:
    """The sheet: one summary line per outcome, then one line per chosen image; condition: the
    run record's condition (its name, floors and decoder limit are stated)."""
    block = condition.get("clic") or {}
    title(ws, 1, f"CLIC ({condition.get('name')}): one point per image, the set as one target")
    limit = block.get("max_decoder_bytes")
    if limit:
        ws.cell(row=2, column=1, value=f"The decoder with its model at most {limit:,} bytes "
                "(`ctc clic package` states the package's size).")  # fmt: skip
    floors = _floors(block)
    write_header(ws, 3, SUMMARY_HEADERS)
    row = 4
    for o in outcomes:
        budget, totals, uniform = o.budget, o.totals, o.uniform
        write_row(ws, row, [
            o.codec, o.track, budget.bpp if budget else None, budget and budget.nbytes,
            budget.rule if budget else None, floors if o.track == "transparent" else None,
            totals.total_bytes if totals else None, totals.psnr if totals else None,
            totals.msssim if totals else None, o.verdict, o.method,
            uniform.target if uniform else None, uniform.total_bytes if uniform else None,
            uniform.psnr if uniform else None, o.gain_db, o.saving_percent, o.reason,
        ], SUMMARY_FORMATS)  # fmt: skip
        row += 1
    row += 1
    ws.cell(row=row, column=1, value="Chosen points").font = SECTION_FONT
    row += 1
    write_header(ws, row, CHOICE_HEADERS)
    row += 1
    for o in outcomes:
        for r in o.chosen:
            write_row(ws, row, [
                o.codec, o.budget.bpp if o.budget else None, r["image"], r["target_bpp"],
                r["bytes"], r["bpp"], r.get("psnr_rgb"), r.get("msssim_rgb"),
            ], CHOICE_FORMATS)  # fmt: skip
            row += 1
    ws.freeze_panes = "B4"
    fit_columns(ws)


def _floors(block: Mapping[str, Any]) -> str | None:
    """A transparent track's floors in words, None for a track without floors."""
    floors = []
    if block.get("min_psnr") is not None:
        floors.append(f"PSNR >= {block['min_psnr']:g} dB")
    if block.get("min_msssim") is not None:
        floors.append(f"MS-SSIM >= {block['min_msssim']:g}")
    return ", ".join(floors) or None
