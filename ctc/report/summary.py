"""The numbers of a report's Summary: BD-rates, tolerance shares, time ratios, average curves.

BD follows docs/bdrate.md: every codec against every anchor, for every metric, over each bpp
range of the reported condition (ReportData.bd_ranges: its bd_ranges, e.g. FVC's low 0.06-0.5
and high 0.25-1.5 bpp, then all points), both dataset aggregations (the FVC/NIC workbook's mean
of per-image values, and the dataset-average curve of most papers).
Time ratios are geometric means over image x target pairs, as the JVET CTC summary sheets
report EncT and DecT (JVET-M1006 / JCTVC-L1100 templates): each row's times are one encode at
its final knob value and one decode (ctc.job), so the ratio compares like with like; pairs whose
anchor times come from frozen results or a CSV file (another day, maybe another machine) are
counted so that the report can say so.

For a test set with classes (ReportData.classes), class_bd_rows gives the same BD rows for each
class, its images taken as one dataset of their own (both aggregations, every range).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ctc.bdrate import (
    LeftOutWarning,
    LowOverlapWarning,
    OutlierWarning,
    bd_dataset,
    describe_left_out,
    msssim_db,
)
from ctc.datasets import ImageClass
from ctc.frozen import is_frozen
from ctc.report.data import Metric, ReportData, class_data, curves


@dataclass
class BDCell:
    """BD-rate of one codec against one anchor, one metric, one bpp range.

    per_image_mean, average_curve: the two aggregations in percent (ctc.bdrate.bd_dataset), None
    where that aggregation has no value (`error` then says why). images: the images with the
    metric for both codecs; per_image: BD-rate (%) of each image in the per-image mean.
    outliers, low_overlap: flagged images, "<average curve>" when the average is flagged.
    left_out, average_curve_left_out: image -> why it is not in the per-image mean, not in the
    average curve (left_out_note puts both in one line).
    """

    per_image_mean: float | None = None
    average_curve: float | None = None
    images: int = 0
    outliers: list[str] = field(default_factory=list)
    low_overlap: list[str] = field(default_factory=list)
    per_image: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    left_out: dict[str, str] = field(default_factory=dict)
    average_curve_left_out: dict[str, str] = field(default_factory=dict)

    @property
    def left_out_note(self) -> str:
        """The left-out images of both aggregations with the reasons, "" when none."""
        notes = []
        if self.left_out:
            notes.append(f"per-image mean leaves out {describe_left_out(self.left_out)}")
        if self.average_curve_left_out:
            notes.append(
                f"average curve leaves out {describe_left_out(self.average_curve_left_out)}"
            )
        return "; ".join(notes)


@dataclass
class BDRow:
    """One codec against one anchor for one metric, over every range. cells: by range name, in
    the order of ReportData.bd_ranges ("all" last). left_out: images without the metric for one
    of the two codecs (in no cell); a cell names the images it leaves out."""

    codec: str
    anchor: str
    metric: Metric
    cells: dict[str, BDCell]
    left_out: list[str]


def bd_rows(data: ReportData, anchors: Sequence[str], method: str = "pchip") -> list[BDRow]:
    """BD-rate of every codec (other than the anchor itself) against every anchor."""
    out = []
    for anchor in anchors:
        for codec in data.codecs:
            if codec == anchor:
                continue
            for metric in data.metrics():
                out.append(_bd_row(data, codec, anchor, metric, method))
    return out


def _bd_row(data: ReportData, codec: str, anchor: str, metric: Metric, method: str) -> BDRow:
    test_curves = curves(data.rows[codec], metric)
    anchor_curves = curves(data.rows[anchor], metric)
    images = sorted(set(test_curves) & set(anchor_curves))
    every = {r["image"] for r in data.rows[codec]} | {r["image"] for r in data.rows[anchor]}
    left_out = sorted(every - set(images))
    cells = {}
    for bpp_range in data.bd_ranges:
        cell = BDCell(images=len(images))
        if not images:
            cell.error = f"no image has {metric.label} for both {codec} and {anchor}"
        else:
            try:
                with warnings.catch_warnings():
                    # The cell records what these warn about.
                    for category in (LowOverlapWarning, OutlierWarning, LeftOutWarning):
                        warnings.simplefilter("ignore", category)
                    result = bd_dataset(
                        {i: anchor_curves[i] for i in images},
                        {i: test_curves[i] for i in images},
                        method=method,
                        bpp_range=bpp_range.bounds,
                        msssim_linear=metric.msssim,
                    )
            except ValueError as e:
                cell.error = str(e)
            else:
                average = result.average_curve
                cell.per_image_mean = result.per_image_mean
                cell.average_curve = None if average is None else average.value
                cell.outliers = result.outliers + (
                    ["<average curve>"] if average is not None and average.outlier else []
                )
                cell.low_overlap = result.low_overlap + (
                    ["<average curve>"] if average is not None and average.low_overlap else []
                )
                cell.per_image = {name: r.value for name, r in result.per_image.items()}
                cell.left_out = result.left_out
                cell.average_curve_left_out = result.average_curve_left_out
                if result.per_image_mean is None:
                    cell.error = (
                        "per-image mean: every image is left out: "
                        f"{describe_left_out(result.left_out)}"
                    )
                elif average is None:
                    cell.error = f"average curve: {result.average_curve_error}"
        cells[bpp_range.name] = cell
    return BDRow(codec, anchor, metric, cells, left_out)


@dataclass
class CodecSummary:
    """Tolerance and time figures of one codec, with time ratios against each anchor."""

    codec: str
    pairs: int
    in_tolerance: int
    encode_seconds: float
    decode_seconds: float
    enc_ratio: dict[str, float | None]
    dec_ratio: dict[str, float | None]
    ratio_pairs: dict[str, int]
    foreign_times: dict[str, int] = field(default_factory=dict)
    """Per anchor: how many compared pairs take the anchor's times from elsewhere (frozen
    results or a CSV file: another day, maybe another machine), not from this run."""

    @property
    def share(self) -> float:
        return self.in_tolerance / self.pairs if self.pairs else math.nan


def geometric_mean_ratio(
    test: Sequence[dict[str, Any]], anchor: Sequence[dict[str, Any]], column: str
) -> tuple[float | None, int]:
    """Geometric mean of test/anchor over the image x target pairs both have, and their count."""
    by_key = {(r["image"], r["target_bpp"]): r[column] for r in anchor}
    logs = []
    for r in test:
        other = by_key.get((r["image"], r["target_bpp"]))
        if other is not None and other > 0 and r[column] is not None and r[column] > 0:
            logs.append(math.log(r[column] / other))
    return (math.exp(sum(logs) / len(logs)) if logs else None), len(logs)


def codec_summaries(data: ReportData, anchors: Sequence[str]) -> list[CodecSummary]:
    """One line per codec: pairs in tolerance, total times, EncT/DecT ratios per anchor."""
    out = []
    for codec, rows in data.rows.items():
        enc, dec, pairs, foreign = {}, {}, {}, {}
        for anchor in anchors:
            enc[anchor], pairs[anchor] = geometric_mean_ratio(
                rows, data.rows[anchor], "encode_seconds"
            )
            dec[anchor], _ = geometric_mean_ratio(rows, data.rows[anchor], "decode_seconds")
            foreign[anchor] = _foreign_pairs(data, rows, anchor)
        out.append(
            CodecSummary(
                codec=codec,
                pairs=len(rows),
                in_tolerance=sum(1 for r in rows if r["in_tolerance"]),
                encode_seconds=sum(r["encode_seconds"] for r in rows),
                decode_seconds=sum(r["decode_seconds"] for r in rows),
                enc_ratio=enc,
                dec_ratio=dec,
                ratio_pairs=pairs,
                foreign_times=foreign,
            )
        )
    return out


def _foreign_pairs(data: ReportData, rows: Sequence[dict[str, Any]], anchor: str) -> int:
    """Pairs of `rows` whose `anchor` row was not timed in this run (frozen or from a CSV)."""
    keys = {(r["image"], r["target_bpp"]) for r in rows}
    from_file = anchor in data.anchor_sources
    return sum(
        1
        for r in data.rows[anchor]
        if (r["image"], r["target_bpp"]) in keys and (from_file or is_frozen(r))
    )


@dataclass(frozen=True)
class AveragePoint:
    """A point of a dataset-average RD curve (what the charts and plots draw)."""

    target: float
    bpp: float
    quality: float
    images: int


def average_curve(rows: Sequence[dict[str, Any]], metric: Metric) -> list[AveragePoint]:
    """Mean bpp and mean quality over the images at each target (MS-SSIM: mean of linear
    values, then dB, as bdrate's average curve), for the charts and plots.

    Each point averages the images that have a finite value at its target (`images` counts
    them): a lossless decode's infinite PSNR is left out of its point, while its linear MS-SSIM
    of 1 is averaged. A target with no such image, or where every image is at MS-SSIM 1 (a mean
    of 1 has no dB value), has no point. The BD average curve (ctc.bdrate.bd_dataset) leaves out
    whole images instead, so that every point averages the same images.
    """
    points = []
    for target in sorted({r["target_bpp"] for r in rows}):
        group = [
            r for r in rows
            if r["target_bpp"] == target and r.get(metric.column) is not None
            and math.isfinite(r[metric.column])
        ]  # fmt: skip
        if not group:
            continue
        quality = float(np.mean([r[metric.column] for r in group]))
        if metric.msssim:
            if quality >= 1.0:
                continue
            quality = float(msssim_db(quality))
        bpp = float(np.mean([r["bpp"] for r in group]))
        points.append(AveragePoint(target, bpp, quality, len(group)))
    return points


@dataclass
class ClassBDRow:
    """BD-rate of one codec against one anchor for one metric over one class's images (their
    own dataset for ctc.bdrate.bd_dataset); image_class None: the overall row (every image)."""

    image_class: ImageClass | None
    row: BDRow

    @property
    def class_name(self) -> str:
        return self.image_class.name if self.image_class else "all"


def class_bd_rows(
    data: ReportData,
    anchors: Sequence[str],
    method: str = "pchip",
    overall: Sequence[BDRow] | None = None,
) -> list[ClassBDRow]:
    """Per class (data.classes, in order): bd_rows of that class's rows alone; then the overall
    rows (`overall`, default bd_rows of all the data). [] where the data has no classes."""
    if not data.classes:
        return []
    out = []
    for image_class in data.classes:
        sub = class_data(data, image_class)
        codecs = [c for c in sub.codecs if sub.rows[c]]
        if not any(a in codecs for a in anchors):
            continue
        sub.rows = {c: sub.rows[c] for c in codecs}
        present = [a for a in anchors if a in sub.rows]
        out += [ClassBDRow(image_class, r) for r in bd_rows(sub, present, method)]
    overall = bd_rows(data, anchors, method) if overall is None else overall
    return out + [ClassBDRow(None, r) for r in overall]
