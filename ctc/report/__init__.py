"""Reports of a CTC run: BD-rate summary, per-codec results, RD charts and plots, complexity,
conditions, written as one .xlsx workbook (openpyxl) and PNG plots next to it.

    from ctc.report import build_report
    report = build_report("ctc-results/fvc", anchors=["jpeg"], out="report.xlsx")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctc.report.data import ReportData, ReportError, add_anchors, load
from ctc.report.plots import write_plots
from ctc.report.summary import BDRow, CodecSummary, bd_rows, codec_summaries
from ctc.report.workbook import AGGREGATION_LABELS, METHOD_LABELS, write_workbook

__all__ = ["Report", "ReportError", "build_report", "measure_codecs"]


@dataclass
class Report:
    """What build_report wrote and the numbers in it."""

    workbook: Path
    plots: list[Path]
    data: ReportData
    anchors: list[str]
    bd: list[BDRow]
    summaries: list[CodecSummary]
    complexity: list[dict[str, Any]]
    results_sheets: dict[str, str]


def measure_codecs(
    data: ReportData, picture: np.ndarray | None = None, repeat: int = 2
) -> tuple[list[dict[str, Any]], list[str]]:
    """ctc.complexity measurements of the run's codecs that load here; notes on the others."""
    from ctc import complexity, registry

    results, notes = [], []
    for codec_name in data.codecs:
        if codec_name in data.anchor_sources:
            notes.append(f"{codec_name}: frozen rows from a file, not measured")
            continue
        try:
            codec = registry.load_codec(codec_name)
        except registry.CodecLoadError as e:
            notes.append(f"{codec_name}: not measured ({e})")
            continue
        result = complexity.measure(codec, picture, repeat=repeat) if picture is None else (
            complexity.measure(
                codec, picture, repeat=repeat,
                picture_name=f"a {picture.shape[1]}×{picture.shape[0]} picture",
            )
        )  # fmt: skip
        if result["version"] != data.versions[codec_name]:
            notes.append(
                f"{codec_name}: measured version {result['version']!r} differs from the run's "
                f"{data.versions[codec_name]!r}"
            )
        results.append(result)
    return results, notes


def build_report(
    folder: str | Path,
    anchors: Sequence[str] | None = None,
    out: str | Path | None = None,
    *,
    method: str = "pchip",
    aggregation: str = "per_image_mean",
    condition: str | None = None,
    complexity: Sequence[dict[str, Any]] | None = None,
    measure: bool = True,
    complexity_picture: np.ndarray | None = None,
    complexity_repeat: int = 2,
    plots: bool = True,
    command: str = "",
) -> Report:
    """Read a run folder's store and write the workbook (default FOLDER/report.xlsx) and plots.

    anchors: codec names of the run or CSV files of frozen rows (`ctc results --csv` format);
    default: the condition's anchors. complexity: measurements to put in the Complexity sheet
    (e.g. read from `ctc complexity --json`); without them and with `measure`, every codec of
    the run that loads here is measured on complexity_picture (default 3840x2160).
    """
    if method not in METHOD_LABELS:
        raise ReportError(f"method must be one of {tuple(METHOD_LABELS)}, not {method!r}")
    if aggregation not in AGGREGATION_LABELS:
        raise ReportError(
            f"aggregation must be one of {tuple(AGGREGATION_LABELS)}, not {aggregation!r}"
        )
    data = load(folder, condition)
    if not anchors:
        anchors = [a for a in data.condition.get("anchors", []) if a in data.rows]
        if not anchors:
            raise ReportError(
                f"no anchor given and none of the condition's anchors is in the run "
                f"(codecs: {', '.join(data.codecs)}); use --anchor"
            )
    labels = add_anchors(data, anchors)
    bd = bd_rows(data, labels, method)
    summaries = codec_summaries(data, labels)
    notes: list[str] = []
    if complexity is None:
        if measure:
            measured, notes = measure_codecs(data, complexity_picture, complexity_repeat)
            complexity = measured
        else:
            complexity, notes = [], ["complexity not measured (--no-complexity)"]
    out = Path(out) if out else Path(folder) / "report.xlsx"
    out.parent.mkdir(parents=True, exist_ok=True)
    sheets = write_workbook(
        out, data, labels, bd, summaries, method=method, aggregation=aggregation,
        complexity=list(complexity), complexity_notes=notes, command=command,
    )  # fmt: skip
    written = write_plots(data, labels, out.parent, out.stem) if plots else []
    return Report(out, written, data, labels, bd, summaries, list(complexity), sheets)
