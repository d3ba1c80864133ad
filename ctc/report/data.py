"""The rows a report is made of: one condition of a run's store, one version per codec, plus
anchor rows read from CSV files (frozen anchor results in the `ctc results --csv` format), the
classes of the test set where it has them (use_classes), and the bpp ranges its BD-rates are
computed over (the condition's bd_ranges, then every point)."""

from __future__ import annotations

import csv
import dataclasses
import functools
import importlib.util
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ctc.bdrate import Curve
from ctc.datasets import ImageClass, classes_from_record, dataset_classes
from ctc.store import FILENAME, RESULT_COLUMNS, Store


class ReportError(ValueError):
    """The run folder or an anchor cannot be reported on (missing, empty, unknown name)."""


@dataclass(frozen=True)
class Metric:
    """A quality column of the store and how to show it.

    msssim: linear MS-SSIM, integrated and plotted in dB (-10 log10(1 - x)); BD on the dB scale
    is what docs/bdrate.md prescribes, and the dataset-average curve averages linear values.
    lower_better: a distance, lower for better quality (NLPD). It is plotted as it is; BD, which
    needs a quality that rises with rate, integrates its negation (curves()), so a BD-rate keeps
    its meaning (negative: fewer bits than the anchor for the same quality).
    """

    column: str
    label: str
    unit: str
    msssim: bool = False
    lower_better: bool = False

    @property
    def axis(self) -> str:
        """Axis title: the quality as it is integrated and plotted."""
        if self.msssim:
            return f"{self.label} (dB)"
        if self.lower_better:
            return f"{self.label} (lower is better)"
        return f"{self.label} ({self.unit})" if self.unit else self.label


METRICS: tuple[Metric, ...] = (
    Metric("psnr_rgb", "PSNR RGB", "dB"),
    Metric("psnr_y", "PSNR Y", "dB"),
    Metric("psnr_u", "PSNR U", "dB"),
    Metric("psnr_v", "PSNR V", "dB"),
    Metric("psnr_yuv", "PSNR YUV 6:1:1", "dB"),
    Metric("msssim_rgb", "MS-SSIM RGB", "", msssim=True),
    Metric("msssim_y", "MS-SSIM Y", "", msssim=True),
    Metric("vmaf", "VMAF", ""),
    Metric("psnr_hvs", "PSNR-HVS", "dB"),
    Metric("psnr_hvsm", "PSNR-HVS-M", "dB"),
    Metric("msssim_yuv", "MS-SSIM YUV", "", msssim=True),
    Metric("vif_p", "VIF-P", ""),
    Metric("iw_ssim", "IW-SSIM", ""),
    Metric("fsim", "FSIM", ""),
    Metric("fsimc", "FSIMc", ""),
    Metric("nlpd", "NLPD", "", lower_better=True),
)

_TYPES = {name: kind.split()[0] for name, kind in RESULT_COLUMNS}


@dataclass(frozen=True)
class BDRange:
    """A named bpp range for BD-rates, bounds included (on the target bpp where rows have one,
    as ctc.bdrate.select_range decides); ALL_POINTS is (0, inf): every point."""

    name: str
    low: float
    high: float

    @property
    def bounds(self) -> tuple[float, float]:
        """(low, high) in bpp, as ctc.bdrate.bd_dataset takes a range."""
        return self.low, self.high

    @property
    def label(self) -> str:
        """The range in words, from its numbers: "low: 0.06–0.5 bpp", "all points"."""
        if self == ALL_POINTS:
            return "all points"
        return f"{self.name}: {self.low:g}–{self.high:g} bpp"


ALL_POINTS = BDRange("all", 0.0, math.inf)


def bd_ranges(condition: Mapping[str, Any]) -> tuple[BDRange, ...]:
    """The BD ranges of a condition (its run record's dict): its bd_ranges from the lowest bpp
    up (by low bound, then high bound), then every point. A condition without bd_ranges (none
    declared, or the record of a run made before the field existed) gets every point only: no
    range is assumed for it.

    Ordered by bpp, not as the condition file lists them: the store keeps the run record as
    JSON with sorted keys, so the file's order is not there to read (FVC's file order, low then
    high, is its bpp order too)."""
    declared = condition.get("bd_ranges") or {}
    ranges = [BDRange(name, float(low), float(high)) for name, (low, high) in declared.items()]
    return (*sorted(ranges, key=lambda r: (r.low, r.high, r.name)), ALL_POINTS)


@dataclass
class ReportData:
    """Rows by codec label, with what was selected and why."""

    folder: Path
    condition: dict[str, Any]
    condition_hash: str
    rows: dict[str, list[dict[str, Any]]]
    versions: dict[str, str]
    runs: list[dict[str, Any]]
    anchor_sources: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unfinished: str | None = None  # why the rows may be partial: the latest run did not finish
    classes: tuple[ImageClass, ...] = ()  # the test set's classes (use_classes), () for none

    @property
    def codecs(self) -> list[str]:
        return list(self.rows)

    @property
    def bd_ranges(self) -> tuple[BDRange, ...]:
        """The bpp ranges of the report's BD-rates: the condition's, then every point."""
        return bd_ranges(self.condition)

    @property
    def targets(self) -> list[float]:
        return sorted({r["target_bpp"] for rows in self.rows.values() for r in rows})

    def metrics(self) -> list[Metric]:
        """Metrics with at least one value in the rows."""
        return [
            m
            for m in METRICS
            if any(r.get(m.column) is not None for rows in self.rows.values() for r in rows)
        ]

    def record(self) -> dict[str, Any]:
        """The record of the latest run of the reported condition (by hash and name: conditions
        that differ only in targets share a hash)."""
        runs = [r for r in self.runs if r["condition_hash"] == self.condition_hash]
        name = self.condition.get("name")
        named = [r for r in runs if r["record"].get("condition", {}).get("name") == name]
        runs = named or runs
        return runs[-1]["record"] if runs else {}

    def label(self, codec: str) -> str:
        """What a codec of the report is, in words (codec_label of its rows' versions), or ""
        where its name says all there is (no label)."""
        rows = self.rows.get(codec) or [{}]
        versions = sorted({str(r.get("codec_version") or "") for r in rows} - {""})
        name = str(rows[0].get("codec") or codec)
        labels = [codec_label(name, v) for v in versions or [self.versions.get(codec, "")]]
        labels = list(dict.fromkeys(lb for lb in labels if lb != name))
        return "; ".join(labels)

    def named(self, codec: str) -> str:
        """The codec's name with its label: "vvc (VVenC 1.15.0-dev preset fast, ...)"."""
        label = self.label(codec)
        return f"{codec} ({label})" if label else codec


def load(folder: str | Path, condition: str | None = None) -> ReportData:
    """Rows of one condition of a run folder: by default the condition of the latest run.

    condition: a condition name or a prefix of its hash. Where a codec has rows of several
    versions (a retrained model), the version with the latest row is kept and the others are
    named in `notes`.
    """
    folder = Path(folder)
    if not (folder / FILENAME).is_file():
        raise ReportError(f"no results in {folder} (no {FILENAME})")
    with Store(folder) as store:
        rows, runs = store.results(), store.runs()
    if not rows:
        raise ReportError(f"no finished jobs in {folder}")
    chash, latest_run = _pick_condition(rows, runs, condition)
    others = sorted({r["condition_hash"][:12] for r in rows if r["condition_hash"] != chash})
    rows = [r for r in rows if r["condition_hash"] == chash]
    notes = []
    if others:
        notes.append(f"rows of other condition hashes are not reported: {', '.join(others)}")
    record = latest_run["record"] if latest_run else {}
    targets = set(record.get("condition", {}).get("targets_bpp") or ())
    off = sorted({r["target_bpp"] for r in rows} - targets) if targets else []
    if off:  # rows of another condition of the same hash (one with other targets)
        rows = [r for r in rows if r["target_bpp"] in targets]
        shown = ", ".join(f"{t:g}" for t in off)
        notes.append(f"rows at targets that are not the condition's are not reported: {shown}")
    if not rows:
        raise ReportError(f"no finished jobs of condition {record['condition']['name']} in "
                          f"{folder}")  # fmt: skip
    latest: dict[str, tuple[str, str]] = {}
    for r in rows:
        best = latest.get(r["codec"])
        if best is None or r["finished_at"] > best[1]:
            latest[r["codec"]] = (r["codec_version"], r["finished_at"])
    by_codec: dict[str, list[dict[str, Any]]] = {}
    versions: dict[str, str] = {}
    for codec in sorted(latest):
        version = latest[codec][0]
        versions[codec] = version
        by_codec[codec] = [r for r in rows if r["codec"] == codec and r["codec_version"] == version]
        dropped = sorted({r["codec_version"] for r in rows if r["codec"] == codec} - {version})
        if dropped:
            notes.append(f"{codec}: rows of older versions not reported: {dropped}")
    unfinished = None
    if latest_run and latest_run["status"] != "finished":
        unfinished = (
            f"the latest run of this condition (run {latest_run['id']}) is "
            f"{latest_run['status']}: this report covers the jobs finished so far"
        )
        notes.append(unfinished)
    return ReportData(
        folder=folder,
        condition=record.get("condition", {"name": rows[0]["condition"]}),
        condition_hash=chash,
        rows=by_codec,
        versions=versions,
        runs=runs,
        notes=notes,
        unfinished=unfinished,
    )


def use_classes(data: ReportData, manifest: str | Path | None = None) -> tuple[ImageClass, ...]:
    """Set and return the classes of the reported dataset: those of a manifest file when given
    (the images need not be here), else those the run recorded (its dataset's "classes"), else
    none. Images of the rows that no class holds (another name, or other pixels) are named in
    `notes`; they count in the overall BD-rates only."""
    if manifest is not None:
        classes = dataset_classes(manifest)
    else:
        found = (classes_from_record(r["record"].get("dataset")) for r in reversed(data.runs))
        classes = next((c for c in found if c), ())
    data.classes = tuple(classes)
    if classes:
        outside = sorted(
            {
                r["image"]
                for rows in data.rows.values()
                for r in rows
                if not any(c.holds(r["image"], r.get("image_sha256")) for c in classes)
            }
        )
        if outside:
            data.notes.append(
                f"images in no class of the dataset (in the overall BD-rates only): "
                f"{', '.join(outside)}"
            )
    return data.classes


def class_data(data: ReportData, image_class: ImageClass) -> ReportData:
    """The report data of one class: every codec's rows of the images the class holds."""
    rows = {
        codec: [r for r in codec_rows if image_class.holds(r["image"], r.get("image_sha256"))]
        for codec, codec_rows in data.rows.items()
    }
    return dataclasses.replace(data, rows=rows, notes=[], classes=(image_class,))


def codec_label(codec: str, version: str) -> str:
    """What the codec `codec` was when it wrote rows of `version`, in a few words.

    Asks the registered codec class (entry-point group ctc.codecs; for "nic:MODEL" the class of
    nic) for `label_for(version)` without constructing it, so it names rows of earlier runs and
    frozen rows as well as the codec as it is now. Falls back to the codec name: a codec without
    label_for, a version it does not recognise, a codec that is not registered (or fails to
    import).
    """
    label_for = _label_function(codec.split(":")[0])
    if label_for is not None and version:
        try:
            label = label_for(version)
        except Exception:  # a codec's own bug must not stop a report: the name stands
            label = None
        if isinstance(label, str) and label.strip():
            return label.strip()
    return codec


@functools.lru_cache(maxsize=64)
def _label_function(name: str) -> Callable[[str], str | None] | None:
    """The label_for of the class registered as `name`, or None.

    A codec module that does not mention label_for is not imported (importing a learned codec
    imports torch: seconds, for nothing).
    """
    for ep in entry_points(group="ctc.codecs"):
        if ep.name != name:
            continue
        try:
            spec = importlib.util.find_spec(ep.module)
            origin = spec.origin if spec is not None else None
            if (
                origin
                and origin.endswith(".py")
                and "label_for" not in Path(origin).read_text(encoding="utf-8", errors="replace")
            ):
                return None
            function = getattr(ep.load(), "label_for", None)
        except Exception:  # not importable here: no label
            return None
        return function if callable(function) else None
    return None


def _pick_condition(
    rows: Sequence[dict[str, Any]], runs: Sequence[dict[str, Any]], condition: str | None
) -> tuple[str, dict[str, Any] | None]:
    """The condition hash to report and the latest run of the chosen condition (None where no
    run record is left): by default the latest run's; a name is looked up among the runs'
    conditions first (conditions that differ only in targets share a hash), then among the
    rows' names and hash prefixes."""
    hashes = {r["condition_hash"]: r["condition"] for r in rows}
    ran = [r for r in runs if r["condition_hash"] in hashes]
    if condition is None:
        if ran:
            return ran[-1]["condition_hash"], ran[-1]
        return rows[-1]["condition_hash"], None
    named = [r for r in ran if r["record"].get("condition", {}).get("name") == condition]
    if named:
        return named[-1]["condition_hash"], named[-1]
    matches = [h for h, name in hashes.items() if name == condition or h.startswith(condition)]
    if len(matches) != 1:
        names = {r["condition_hash"]: r["record"].get("condition", {}).get("name") for r in ran}
        known = ", ".join(f"{names.get(h) or n} ({h[:12]})" for h, n in hashes.items())
        what = "matches several" if matches else "matches none"
        raise ReportError(f"condition {condition!r} {what} of the folder's conditions: {known}")
    latest = [r for r in ran if r["condition_hash"] == matches[0]]
    return matches[0], latest[-1] if latest else None


def read_rows_csv(path: str | Path) -> list[dict[str, Any]]:
    """Rows written by `ctc results --csv` (every store column), typed as the store types them."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            raw = list(csv.DictReader(f))
    except OSError as e:
        raise ReportError(f"cannot read anchor file {path}: {e}") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise ReportError(f"{path}: not a `ctc results --csv` file ({e})") from None
    rows = []
    for n, r in enumerate(raw, start=2):
        missing = [c for c in ("codec", "image", "target_bpp", "bpp") if c not in r]
        if missing:
            raise ReportError(f"{path}: not a `ctc results --csv` file (no {missing})")
        row: dict[str, Any] = {}
        for name, value in r.items():
            kind = _TYPES.get(name)
            try:
                if value in ("", None):
                    row[name] = None
                elif kind == "REAL":
                    row[name] = float(value)
                elif kind == "INTEGER":
                    row[name] = int(float(value))
                else:
                    row[name] = value
            except ValueError:
                raise ReportError(f"{path}:{n}: {name} is not a number: {value!r}") from None
        rows.append(row)
    if not rows:
        raise ReportError(f"{path}: no rows")
    return rows


def add_anchors(data: ReportData, anchors: Sequence[str]) -> list[str]:
    """Resolve anchor names: a codec of the run, or a CSV file of frozen rows (added to `data`).

    Returns the anchors' labels in the order given.
    """
    labels = []
    for anchor in anchors:
        if anchor in data.rows:
            labels.append(anchor)
            continue
        path = Path(anchor)
        if path.suffix.lower() != ".csv" or not path.is_file():
            known = ", ".join(data.rows)
            raise ReportError(
                f"anchor {anchor!r} is neither a codec of the run ({known}) nor a CSV file of "
                "frozen results"
            )
        rows = _matching_rows(read_rows_csv(path), data, path)
        codecs = sorted({r["codec"] for r in rows})
        if len(codecs) != 1:
            raise ReportError(f"{path}: expected the rows of one codec, found {codecs}")
        label = codecs[0] if codecs[0] not in data.rows else f"{codecs[0]} ({path.name})"
        data.rows[label] = rows
        data.versions[label] = "; ".join(sorted({str(r.get("codec_version")) for r in rows}))
        data.anchor_sources[label] = str(path)
        labels.append(label)
    return labels


def _matching_rows(
    rows: list[dict[str, Any]], data: ReportData, path: Path
) -> list[dict[str, Any]]:
    """The rows of a frozen file that belong to the reported condition.

    Rows without a target (fixed-QP rows) are not CTC points. Rows of the run's condition hash
    are taken when there are any; otherwise rows of the same condition name, with a note that
    their hash (tolerance, metric options) differs.
    """
    targeted = [r for r in rows if r.get("target_bpp") is not None]
    same_hash = [r for r in targeted if r.get("condition_hash") == data.condition_hash]
    if same_hash:
        return same_hash
    name = data.condition.get("name")
    same_name = [r for r in targeted if r.get("condition") == name]
    if not same_name:
        found = sorted({str(r.get("condition")) for r in targeted})
        raise ReportError(f"{path}: no rows of condition {name!r} (has {found})")
    hashes = sorted({str(r.get("condition_hash"))[:12] for r in same_name})
    data.notes.append(
        f"frozen rows of {path}: condition hash {', '.join(hashes)} differs from the run's "
        f"{data.condition_hash[:12]} (another tolerance or metric options)"
    )
    return same_name


def curves(rows: Sequence[dict[str, Any]], metric: Metric) -> dict[str, Curve]:
    """Per-image curves (achieved bpp, quality, target bpp) of one codec for one metric.

    Images with a missing value (None) at some target are left out (the caller names them as
    missing the metric). Infinite or NaN values stay: ctc.bdrate.bd_dataset leaves such an
    image out of its aggregations and says why (an infinite PSNR: a lossless decode). MS-SSIM
    stays linear here (bdrate converts it with msssim_linear=True). A lower-is-better metric
    (NLPD) is negated, so that its quality rises with rate as BD needs.
    """
    by_image: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_image.setdefault(r["image"], []).append(r)
    out = {}
    for image, group in sorted(by_image.items()):
        if any(r.get(metric.column) is None for r in group):
            continue
        group = sorted(group, key=lambda r: r["target_bpp"])
        sign = -1.0 if metric.lower_better else 1.0
        out[image] = Curve(
            [r["bpp"] for r in group],
            [sign * r[metric.column] for r in group],
            [r["target_bpp"] for r in group],
        )
    return out
