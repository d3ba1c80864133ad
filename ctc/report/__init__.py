"""Reports of a CTC run: BD-rate summary, per-codec results, RD charts and plots, complexity,
conditions, written as one .xlsx workbook (openpyxl) and PNG plots next to it.

    from ctc.report import build_report
    report = build_report("ctc-results/fvc", anchors=["jpeg"], out="report.xlsx")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ctc.clic.evaluate import Outcome, judge, track_of
from ctc.complexity_cache import ComplexityCache
from ctc.datasets import DatasetError
from ctc.report.data import ReportData, ReportError, add_anchors, load, use_classes
from ctc.report.plots import write_plots
from ctc.report.summary import (
    BDRow,
    ClassBDRow,
    CodecSummary,
    bd_rows,
    class_bd_rows,
    codec_summaries,
)
from ctc.report.workbook import AGGREGATION_LABELS, METHOD_LABELS, write_workbook

__all__ = ["Report", "ReportError", "build_report", "largest_picture", "measure_codecs"]


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
    class_bd: list[ClassBDRow] = field(default_factory=list)
    """Per class of the test set, then overall (class "all"); [] when it has no classes."""
    warnings: list[str] = field(default_factory=list)
    """What the report leaves out that its reader would expect (a condition's anchor without
    rows), one line each; they are in data.notes (the workbook's notes) too."""
    clic: list[Outcome] = field(default_factory=list)
    """The CLIC verdicts of a CLIC condition (ctc.clic.evaluate), [] for another condition."""


ComplexityProgress = Callable[[str, str], None]
"""Told (codec, step in words) as a complexity measurement goes: which codec ('' for all of
them), what it does."""


def largest_picture(data: ReportData) -> tuple[int, int]:
    """(width, height) of the run's largest image (by pixels); UHD where the rows hold none."""
    from ctc.complexity import UHD

    sizes = {
        (int(r["width"]), int(r["height"]))
        for rows in data.rows.values()
        for r in rows
        if isinstance(r.get("width"), int) and isinstance(r.get("height"), int)
    }
    return max(sizes, key=lambda s: (s[0] * s[1], s)) if sizes else UHD


def given_entry(given: Sequence[dict[str, Any]], name: str, version: str) -> dict[str, Any] | None:
    """The measurement of `given` for a codec of the run: the one of its exact version, else
    the one of its name."""
    same = [g for g in given if g.get("version") == version]
    same = same or [g for g in given if g.get("codec") == name]
    return same[0] if same else None


def measure_codecs(
    data: ReportData,
    picture: np.ndarray | None = None,
    repeat: int = 2,
    *,
    given: Sequence[dict[str, Any]] = (),
    measure: bool = True,
    cache: ComplexityCache | None = None,
    remeasure: bool = False,
    progress: ComplexityProgress | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The complexity of each codec of the run, and notes on those without one.

    Per codec: the measurement in `given` (read from `ctc complexity --json`) of its version
    or name; else (with `measure`) the one in `cache` of the run's version of it on this
    machine (unless `remeasure`); else ctc.complexity.measure() of the codec installed here,
    which is then stored in `cache`. Frozen anchor rows are not measured. picture: uint8
    (H, W, 3), default the astronaut test picture of the size of the run's largest image, so a
    report measures in the time and memory the run's own encodes took (kMAC/pixel does not
    depend on the size). Measurements of `given` that match no codec of the run are kept too.
    Raises nothing for a codec that fails: it gets a note.
    """
    from ctc import complexity, registry
    from ctc.complexity_cache import make_key, measure_or_reuse, picture_key

    say: ComplexityProgress = progress or (lambda codec, step: None)
    name, key_picture = "", {}
    largest = largest_picture(data)
    if measure and picture is None:
        picture = complexity.test_picture(*largest)
    elif measure and picture.shape[0] * picture.shape[1] > largest[0] * largest[1]:
        say("", f"measuring on {picture.shape[1]}x{picture.shape[0]}, larger than the run's "
            f"largest image ({largest[0]}x{largest[1]}): time and memory grow with the pixels "
            "(a whole-picture learned codec can take GBs)")  # fmt: skip
    if picture is not None:  # named as `ctc complexity --size WxH` names it: one cache entry
        name = f"astronaut mirrored to {picture.shape[1]}x{picture.shape[0]}"
        key_picture = picture_key(picture, name)
    results, notes, used = [], [], []
    for codec_name in data.codecs:
        version = data.versions[codec_name]
        entry = given_entry(given, codec_name, version)
        if entry is not None:
            used.append(id(entry))
            if entry["version"] != version:
                notes.append(f"{codec_name}: the --complexity measurement is of version "
                             f"{entry['version']!r}, the run's is {version!r}")  # fmt: skip
            results.append(entry)
            continue
        if codec_name in data.anchor_sources:
            notes.append(f"{codec_name}: frozen rows from a file, not measured")
            continue
        if not measure:
            notes.append(f"{codec_name}: complexity not measured (--no-complexity)")
            continue
        try:
            codec = registry.load_codec(codec_name)
        except registry.CodecLoadError as e:
            notes.append(f"{codec_name}: not measured ({e})")
            continue
        installed = codec.version()
        versions = [version] if installed == version else [version, installed]
        keys = [make_key(codec.name, v, key_picture, None, repeat) for v in versions]
        try:
            result = measure_or_reuse(
                codec, picture, keys, cache=cache, remeasure=remeasure, repeat=repeat,
                picture_name=name, say=lambda step, c=codec_name: say(c, step),
            )  # fmt: skip
        except complexity.ComplexityError as e:
            notes.append(f"{codec_name}: not measured ({e})")
            continue
        if result["version"] != version:
            notes.append(
                f"{codec_name}: measured version {result['version']!r} differs from the run's "
                f"{version!r}"
            )
        results.append({**result, "codec": codec_name})  # named as the run names it
    results += [g for g in given if id(g) not in used]
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
    complexity_cache: ComplexityCache | None = None,
    remeasure: bool = False,
    progress: ComplexityProgress | None = None,
    plots: bool = True,
    command: str = "",
    dataset: str | Path | None = None,
) -> Report:
    """Read a run folder's store and write the workbook (default FOLDER/report.xlsx) and plots.

    anchors: codec names of the run or CSV files of frozen rows (`ctc results --csv` format);
    default: the condition's anchors. complexity: measurements to put in the Complexity sheet
    (e.g. read from `ctc complexity --json`), used for the codecs they are of; with `measure`,
    every other codec of the run that loads here takes its measurement from complexity_cache
    (None: no cache; `ctc report` passes ComplexityCache()) unless `remeasure`, or is measured
    on complexity_picture (default: the size of the run's largest image) and cached; progress
    is told each step (see measure_codecs). dataset: a manifest file (.yaml) whose classes get
    BD-rates of their own (a "BD per class" sheet); default: the classes the run recorded, if
    any. A condition's anchor without rows in the folder (when `anchors` is not given) is
    left out and named in Report.warnings and data.notes. Raises ReportError for what cannot
    be reported.
    """
    if method not in METHOD_LABELS:
        raise ReportError(f"method must be one of {tuple(METHOD_LABELS)}, not {method!r}")
    if aggregation not in AGGREGATION_LABELS:
        raise ReportError(
            f"aggregation must be one of {tuple(AGGREGATION_LABELS)}, not {aggregation!r}"
        )
    data = load(folder, condition)
    try:
        use_classes(data, dataset)
    except DatasetError as e:
        raise ReportError(str(e)) from None
    warnings = []
    if not anchors:
        declared = list(data.condition.get("anchors", []))
        anchors = [a for a in declared if a in data.rows]
        if not anchors:
            raise ReportError(
                f"no anchor given and none of the condition's anchors is in the run "
                f"(codecs: {', '.join(data.codecs)}); use --anchor"
            )
        for anchor in dict.fromkeys(a for a in declared if a not in data.rows):
            warnings.append(
                f"anchor {anchor} of condition {data.condition.get('name', '')} has no rows "
                f"in {data.folder}: no BD-rates against it (codecs with rows: "
                f"{', '.join(data.codecs)})"
            )
        data.notes.extend(warnings)
    labels = add_anchors(data, anchors)
    bd = bd_rows(data, labels, method)
    summaries = codec_summaries(data, labels)
    class_bd = class_bd_rows(data, labels, method, overall=bd)
    if measure or complexity:
        complexity, notes = measure_codecs(
            data, complexity_picture, complexity_repeat, given=complexity or (),
            measure=measure, cache=complexity_cache, remeasure=remeasure, progress=progress,
        )  # fmt: skip
    else:
        complexity, notes = [], ["complexity not measured (--no-complexity)"]
    out = Path(out) if out else Path(folder) / "report.xlsx"
    out.parent.mkdir(parents=True, exist_ok=True)
    clic = clic_outcomes(data)
    sheets = write_workbook(
        out, data, labels, bd, summaries, method=method, aggregation=aggregation,
        complexity=list(complexity), complexity_notes=notes, command=command,
        class_bd=class_bd, clic=clic,
    )  # fmt: skip
    written = write_plots(data, labels, out.parent, out.stem) if plots else []
    return Report(
        out, written, data, labels, bd, summaries, list(complexity), sheets, class_bd, warnings,
        clic,
    )  # fmt: skip


def clic_outcomes(data: ReportData) -> list[Outcome]:
    """The CLIC outcomes of the report's rows where its condition is a CLIC one, else []."""
    if track_of(data.condition) is None:
        return []
    images = (data.record().get("dataset") or {}).get("pixel_sha256")
    rows = [r for codec, rows in data.rows.items() if codec in data.versions for r in rows]
    return judge(rows, data.condition, images=images, versions=data.versions)
