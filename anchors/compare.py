"""BD-rates of the frozen anchor curves: against the published Kodak curves, and VVC against BPG.

    python -m anchors.compare [anchors/results/kodak]

Published curves: CompressAI's results/image/kodak (commit 869a9f5), mean bpp and mean RGB PSNR
over the 24 Kodak images, QP 47 down to 12 (BPG 0.9.8 4:4:4 x265 ycbcr; VTM all-intra, version
not recorded, whose PSNR above ~1 bpp is overstated because it was measured against a
colour-converted original). Ours are the fixed-QP rows of the frozen CSVs, averaged the same way
(mean bpp and mean PSNR RGB per QP). BD-rate: ctc.bdrate, pchip (JVET's method), in percent,
negative when the first-named curve needs fewer bits.
"""

from __future__ import annotations

import csv
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from ctc.bdrate import bd_dataset, bd_rate, describe_left_out

PUBLISHED: dict[str, tuple[tuple[float, float], ...]] = {
    "bpg": (
        (0.068, 26.20), (0.161, 28.68), (0.352, 31.59), (0.685, 34.86),
        (1.200, 38.26), (1.930, 41.48), (3.058, 44.70), (4.703, 47.63),
    ),
    "vtm": (
        (0.048, 26.14), (0.112, 28.49), (0.246, 31.20), (0.491, 34.26),
        (0.875, 37.42), (1.431, 40.42), (2.325, 43.51), (3.633, 46.59),
    ),
}  # fmt: skip


def fixed_qp_curves(path: Path) -> dict[str, dict[float, tuple[float, float]]]:
    """Per image: QP -> (bpp, PSNR RGB) from a frozen CSV's fixed-QP rows."""
    curves: dict[str, dict[float, tuple[float, float]]] = defaultdict(dict)
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["condition"] == "fixed_qp":
                curves[row["image"]][float(row["knob_value"])] = (
                    float(row["bpp"]), float(row["psnr_rgb"]))  # fmt: skip
    return dict(curves)


def target_curves(path: Path, condition: str) -> dict[str, tuple[list, list, list]]:
    """Per image: (bpp, PSNR RGB, target) of a condition's rate-matched rows."""
    points: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["condition"] == condition:
                point = (float(row["bpp"]), float(row["psnr_rgb"]), float(row["target_bpp"]))
                points[row["image"]].append(point)
    return {k: tuple(map(list, zip(*sorted(v), strict=True))) for k, v in points.items()}


def mean_curve(curves: dict[str, dict[float, tuple[float, float]]]) -> np.ndarray:
    """(n, 2) array of mean bpp and mean PSNR per QP over the images that have every QP."""
    qps = sorted(set.intersection(*(set(c) for c in curves.values())))
    return np.array([np.mean([c[q] for c in curves.values()], axis=0) for q in qps])


def bd_of(test: np.ndarray, anchor: np.ndarray) -> float:
    """BD-rate (%) of a (bpp, PSNR) curve against another."""
    return bd_rate(anchor[:, 0], anchor[:, 1], test[:, 0], test[:, 1])


def report(folder: Path) -> str:
    """The comparison table as text."""
    lines = []
    ours = {n: fixed_qp_curves(folder / f"{n}.csv") for n in ("bpg", "vvc")
            if (folder / f"{n}.csv").is_file()}  # fmt: skip
    published = {n: np.array(p) for n, p in PUBLISHED.items()}
    for name, curves in ours.items():
        mean = mean_curve(curves)
        points = " ".join(f"({b:.3f}, {p:.2f})" for b, p in mean[::-1])
        lines.append(f"ours {name} ({len(curves)} images), QP 47..12: {points}")
        for pub in ("bpg", "vtm"):
            lines.append(f"  BD-rate ours {name} vs published {pub}: "
                         f"{bd_of(mean, published[pub]):+.2f} %")  # fmt: skip
    lines.append(
        f"published vtm vs published bpg: {bd_of(published['vtm'], published['bpg']):+.2f} %"
    )
    if len(ours) == 2:
        common = sorted(set(ours["bpg"]) & set(ours["vvc"]))
        vvc_mean = mean_curve({k: ours["vvc"][k] for k in common})
        bpg_mean = mean_curve({k: ours["bpg"][k] for k in common})
        lines.append(f"ours vvc vs ours bpg, mean curves over {len(common)} images: "
                     f"{bd_of(vvc_mean, bpg_mean):+.2f} %")  # fmt: skip

        def per_image(n: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
            return {k: tuple(np.array(sorted(ours[n][k].values())).T) for k in common}

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = bd_dataset(per_image("bpg"), per_image("vvc"))
        note = f" (curves overlap < 75 % on {len(ds.low_overlap)} images)" if ds.low_overlap else ""
        if ds.left_out:
            note += f" (left out: {describe_left_out(ds.left_out)})"
        lines.append(f"ours vvc vs ours bpg, mean of per-image BD-rates: "
                     f"{ds.per_image_mean:+.2f} %{note}")  # fmt: skip
        for qps in ((22, 27, 32, 37, 42, 47), (32, 37, 42, 47)):
            sub = {n: {k: {q: c[q] for q in qps} for k, c in ours[n].items()} for n in ours}
            bd = bd_of(mean_curve(sub["vvc"]), mean_curve(sub["bpg"]))
            lines.append(f"ours vvc vs ours bpg, mean curves, QP {qps[0]}..{qps[-1]}: {bd:+.2f} %")
        for cond, ranges in (("fvc", ("low", "high", "all")), ("jpeg_ai_cfe", ("all",))):
            curves = {n: target_curves(folder / f"{n}.csv", cond) for n in ("bpg", "vvc")}
            for r in ranges:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ds = bd_dataset(curves["bpg"], curves["vvc"], bpp_range=r)
                lines.append(f"ours vvc vs ours bpg on {cond} target rows, range {r}: "
                             f"average curve {ds.average_curve.value:+.2f} %, "
                             f"mean of per-image {ds.per_image_mean:+.2f} %")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(Path(sys.argv[1] if len(sys.argv) > 1 else "anchors/results/kodak")))
