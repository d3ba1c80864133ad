"""BD-rates of the frozen anchor curves: against the published Kodak curves, and against each other.

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
import re
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from ctc.bdrate import LowOverlapWarning, bd_dataset, bd_rate, describe_left_out
from ctc.condition import load_condition

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


def bd_text(test: np.ndarray, anchor: np.ndarray) -> str:
    """bd_of as text, with the overlap of the two curves where it is below ctc.bdrate's
    MIN_OVERLAP (the value then describes only their shared part)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LowOverlapWarning)
        value = bd_of(test, anchor)
    overlap = [re.search(r"overlap by ([\d.]+ %)", str(w.message)) for w in caught]
    note = "".join(f" (curves overlap by {m.group(1)})" for m in overlap if m)
    return f"{value:+.2f} %{note}"


OURS = ("bpg", "vvc", "vtm")
PAIRS = (("vvc", "bpg"), ("vtm", "bpg"), ("vvc", "vtm"))  # (test, anchor)
QP_SUBSETS = ((22, 27, 32, 37, 42, 47), (32, 37, 42, 47))


def conditions_in(path: Path) -> list[str]:
    """The conditions whose rate-matched rows a frozen CSV holds, in file order."""
    with open(path, newline="") as f:
        names = (row["condition"] for row in csv.DictReader(f))
        return [n for n in dict.fromkeys(names) if n != "fixed_qp"]


def report(folder: Path) -> str:
    """The comparison table as text: each frozen curve against the published ones, then each
    pair of PAIRS whose CSVs are both in `folder`."""
    lines = []
    ours = {n: fixed_qp_curves(folder / f"{n}.csv") for n in OURS
            if (folder / f"{n}.csv").is_file()}  # fmt: skip
    published = {n: np.array(p) for n, p in PUBLISHED.items()}
    for name, curves in ours.items():
        mean = mean_curve(curves)
        points = " ".join(f"({b:.3f}, {p:.2f})" for b, p in mean[::-1])
        lines.append(f"ours {name} ({len(curves)} images), QP {_qp_span(curves)}: {points}")
        for pub in ("bpg", "vtm"):
            lines.append(f"  BD-rate ours {name} vs published {pub}: "
                         f"{bd_text(mean, published[pub])}")  # fmt: skip
    lines.append(f"published vtm vs published bpg: {bd_text(published['vtm'], published['bpg'])}")
    for test, anchor in PAIRS:
        if test in ours and anchor in ours:
            lines += pair_lines(folder, ours, test, anchor)
    return "\n".join(lines)


def _qp_span(curves: dict[str, dict[float, tuple[float, float]]]) -> str:
    qps = sorted({q for c in curves.values() for q in c}, reverse=True)
    return f"{qps[0]:g}..{qps[-1]:g}"


def pair_lines(
    folder: Path,
    ours: dict[str, dict[str, dict[float, tuple[float, float]]]],
    test: str,
    anchor: str,
) -> list[str]:
    """BD-rates of our `test` curves against our `anchor` curves: over the images both hold, on
    the fixed QPs both coded (all of them, then the subsets of QP_SUBSETS), and on the target
    rows of every condition both CSVs hold, over the condition's BD ranges and all points."""
    common = sorted(set(ours[test]) & set(ours[anchor]))
    qps = sorted(set.intersection(*(set(ours[n][k]) for n in (test, anchor) for k in common)))
    lines = []
    for subset in (tuple(qps), *(s for s in QP_SUBSETS if set(s) < set(qps))):
        sub = {n: {k: {q: ours[n][k][q] for q in subset} for k in common} for n in (test, anchor)}
        bd = bd_of(mean_curve(sub[test]), mean_curve(sub[anchor]))
        lines.append(f"ours {test} vs ours {anchor}, {len(common)} images, QP {subset[0]:g}.."
                     f"{subset[-1]:g}: mean curves {bd:+.2f} %")  # fmt: skip
    curves = {n: {k: tuple(np.array(sorted(ours[n][k][q] for q in qps)).T) for k in common}
              for n in (test, anchor)}  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = bd_dataset(curves[anchor], curves[test])
    note = f" (curves overlap < 75 % on {len(ds.low_overlap)} images)" if ds.low_overlap else ""
    if ds.left_out:
        note += f" (left out: {describe_left_out(ds.left_out)})"
    lines.append(f"ours {test} vs ours {anchor}, QP {qps[0]:g}..{qps[-1]:g}: mean of per-image "
                 f"BD-rates {ds.per_image_mean:+.2f} %{note}")  # fmt: skip
    paths = {n: folder / f"{n}.csv" for n in (test, anchor)}
    in_anchor = set(conditions_in(paths[anchor]))
    for cond in (c for c in conditions_in(paths[test]) if c in in_anchor):
        targets = {n: {k: c for k, c in target_curves(paths[n], cond).items() if k in common}
                   for n in (test, anchor)}  # fmt: skip
        ranges = {**load_condition(cond).bd_ranges, "all": "all"}  # the condition's, then all
        for r, bounds in ranges.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = bd_dataset(targets[anchor], targets[test], bpp_range=bounds)
            lines.append(f"ours {test} vs ours {anchor} on {cond} target rows, range {r}: "
                         f"average curve {ds.average_curve.value:+.2f} %, "
                         f"mean of per-image {ds.per_image_mean:+.2f} %")  # fmt: skip
    return lines


if __name__ == "__main__":
    print(report(Path(sys.argv[1] if len(sys.argv) > 1 else "anchors/results/kodak")))
