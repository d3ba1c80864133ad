"""Reading a results store back: per-row and per-target tables, CSV.

The per-target summary gives, for each condition, codec version and target: the number of
images, how many are within tolerance (or, for a condition whose tolerance applies to the
dataset average, whether the mean bpp is; "sweep" for a CLIC condition, whose targets are
sweep points and whose set is judged by ctc.clic.evaluate), the mean bpp, the mean of each
per-image metric, and the dataset PSNR that CLIC reports (ctc.metrics.aggregate).

A mean is taken over the finite values only. A lossless decode has infinite PSNR (and MS-SSIM
of 1, infinite in dB); one such image would make the mean infinite, so it is left out of that
mean and counted in the line's `left_out` column ("inf: psnr_rgb 1, msssim_rgb_dB 1"). The
dataset PSNR needs no such rule: it pools squared errors, where a lossless image adds 0 (it is
infinite only when every image is lossless).

The metrics that only some conditions compute (JPEG AI's PSNR-HVS(-M), VIF-P, IW-SSIM, FSIM(c),
NLPD and the FVC's MS-SSIM YUV: OPTIONAL_METRICS) are left out of a printed table where no line
has a value; NLPD is a distance (lower is better), its mean is shown as it is.

For a test set with classes (a dataset manifest, ctc.datasets), summarize_classes gives the
same lines per class, each followed by the overall line (class "all").
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from typing import IO, Any

from ctc.datasets import ImageClass, class_of
from ctc.metrics.aggregate import dataset_psnr
from ctc.ratecontrol import Tolerance
from ctc.store import COLUMN_NAMES

ROW_COLUMNS = (
    "codec", "image", "target_bpp", "bpp", "deviation_percent", "in_tolerance", "n_encodes",
    "knob_value", "psnr_rgb", "psnr_yuv", "msssim_rgb_db", "msssim_y_db", "vmaf",
    "psnr_hvs", "psnr_hvsm", "msssim_yuv_db", "vif_p", "iw_ssim", "fsim", "fsimc", "nlpd",
    "encode_seconds", "decode_seconds",
)  # fmt: skip
HEADERS = {
    "target_bpp": "target", "deviation_percent": "dev%", "in_tolerance": "ok",
    "n_encodes": "encodes", "knob_value": "knob", "msssim_rgb_db": "msssim_rgb_dB",
    "msssim_y_db": "msssim_y_dB", "msssim_yuv_db": "msssim_yuv_dB", "encode_seconds": "enc_s",
    "decode_seconds": "dec_s",
    "psnr_clic": "psnr_dataset", "left_out": "left_out",
}  # fmt: skip
OPTIONAL_METRICS = (
    "psnr_hvs", "psnr_hvsm", "msssim_yuv_db", "vif_p", "iw_ssim", "fsim", "fsimc", "nlpd",
)  # fmt: skip
MEAN_METRICS = ("psnr_rgb", "psnr_yuv", "msssim_rgb_db", "msssim_y_db", "vmaf", *OPTIONAL_METRICS)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            return str(value)
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value)


def format_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], headers: dict[str, str] | None = None
) -> str:
    """A plain fixed-width text table; an OPTIONAL_METRICS column that no row has a value in
    is left out. headers: column titles (default HEADERS, else the column's name)."""
    columns = [
        c for c in columns if c not in OPTIONAL_METRICS or any(r.get(c) is not None for r in rows)
    ]
    header = [(headers or HEADERS).get(c, c) for c in columns]
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _mean(values: list[float | None]) -> tuple[float | None, dict[str, int]]:
    """Mean of the finite values (None when there are none), and how many values it left out,
    by kind ("inf", "-inf", "nan", and "undefined": a value missing where other rows of the
    group have one, such as VIF-P of a flat original, stored empty); a column no row has is
    not counted."""
    present = [v for v in values if v is not None]
    finite = [v for v in present if math.isfinite(v)]
    left_out: dict[str, int] = {}
    for v in present:
        if not math.isfinite(v):
            left_out[str(float(v))] = left_out.get(str(float(v)), 0) + 1
    if present and len(present) < len(values):
        left_out["undefined"] = len(values) - len(present)
    return (sum(finite) / len(finite) if finite else None), left_out


def summarize(
    rows: Sequence[dict[str, Any]], conditions: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """One line per (condition, codec, codec version, target); `conditions` maps a condition
    hash to the condition record (for its tolerance and scope).

    Metric and time columns hold means over the finite values; `left_out` names the infinite
    (lossless) or NaN values left out of them per column, e.g. "inf: psnr_rgb 1,
    msssim_rgb_dB 1", or is None when none was.
    """
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        key = (r["condition"], r["codec"], r["codec_version"], r["target_bpp"], r["condition_hash"])
        groups.setdefault(key, []).append(r)
    out = []
    for (cond, codec, ver, target, chash), group in groups.items():
        mean_bpp = sum(r["bpp"] for r in group) / len(group)
        record = conditions.get(chash, {})
        if record.get("tolerance_scope") == "dataset":  # a sweep point: the set is judged
            in_tol = "sweep"  # by the condition's CLIC rules (ctc.clic.evaluate)
        elif record.get("tolerance_scope") == "dataset_average":
            tol = Tolerance(**record["tolerance"])
            in_tol = "avg ok" if tol.contains(target, mean_bpp) else "avg out"
        else:
            in_tol = f"{sum(r['in_tolerance'] for r in group)}/{len(group)}"
        line = {
            "condition": cond, "codec": codec, "codec_version": ver, "target_bpp": target,
            "images": len(group), "in_tolerance": in_tol, "bpp": mean_bpp,
            "deviation_percent": 100.0 * (mean_bpp / target - 1.0),
        }  # fmt: skip
        if all(r["sse_rgb"] is not None for r in group):
            line["psnr_clic"] = dataset_psnr(
                (r["sse_rgb"] for r in group), (r["n_values"] for r in group)
            )
        left_out: dict[str, list[str]] = {}
        for m in (*MEAN_METRICS, "encode_seconds", "decode_seconds"):
            line[m], skipped = _mean([r.get(m) for r in group])
            for kind, count in skipped.items():
                left_out.setdefault(kind, []).append(f"{HEADERS.get(m, m)} {count}")
        line["left_out"] = "; ".join(f"{k}: {', '.join(v)}" for k, v in left_out.items()) or None
        out.append(line)
    return out


SUMMARY_COLUMNS = (
    "condition", "codec", "target_bpp", "images", "in_tolerance", "bpp", "deviation_percent",
    "psnr_rgb", "psnr_clic", "psnr_yuv", "msssim_rgb_db", "msssim_y_db", "vmaf",
    *OPTIONAL_METRICS, "encode_seconds", "decode_seconds", "left_out",
)  # fmt: skip


def write_csv(rows: Sequence[dict[str, Any]], stream: IO[str]) -> None:
    """Every column of every row, in the store's column order."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(COLUMN_NAMES)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else r[c] for c in COLUMN_NAMES])


def summarize_classes(
    rows: Sequence[dict[str, Any]],
    conditions: dict[str, dict[str, Any]],
    classes: Sequence[ImageClass],
) -> list[dict[str, Any]]:
    """summarize() of each class's rows (a row is in the class that holds its image name and
    pixel sha256, ctc.datasets.ImageClass.holds) and of all rows, with a `class` column ("all"
    for the overall line): per (condition, codec, codec version, target) the class lines in the
    classes' order, then the overall line. Rows that no class holds count only in "all"."""
    order = {c.name: n for n, c in enumerate(classes)}
    lines = []
    for c in classes:
        held = [r for r in rows if c.holds(r["image"], r.get("image_sha256"))]
        lines += [{**line, "class": c.name} for line in summarize(held, conditions)]
    lines += [{**line, "class": ALL_CLASSES} for line in summarize(rows, conditions)]
    groups = list(dict.fromkeys(_group(line) for line in summarize(rows, conditions)))
    rank = {g: n for n, g in enumerate(groups)}
    return sorted(
        lines, key=lambda line: (rank[_group(line)], order.get(line["class"], len(order)))
    )


def unclassified(rows: Sequence[dict[str, Any]], classes: Sequence[ImageClass]) -> list[str]:
    """Images of the rows that no class holds (another name, or other pixels)."""
    return sorted(
        {r["image"] for r in rows if class_of(classes, r["image"], r.get("image_sha256")) is None}
    )


def _group(line: dict[str, Any]) -> tuple:
    return (line["condition"], line["codec"], line["codec_version"], line["target_bpp"])


ALL_CLASSES = "all"
CLASS_SUMMARY_COLUMNS = ("condition", "codec", "class", *SUMMARY_COLUMNS[2:])
