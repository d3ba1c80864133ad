"""One coding tool against its fixed anchor, as a standardization contribution reports it.

In JPEG AI and similar work a contributor turns one tool on in the reference codec, runs the
CTC and reports, in one table: the BD-rates of the tool against the anchor (the codec with the
tool off), the EncT and DecT ratios, and the complexity deltas (kMAC/pixel and parameters of
encoder and decoder). This module builds that table from a `ctc run` folder, with the report's
own pieces: rows by ctc.report.data.load, BD by ctc.report.summary.bd_rows, time ratios by
summary.geometric_mean_ratio, complexity by ctc.report.measure_codecs (cache, `--complexity`
files), and writes it as a one-sheet workbook and as Markdown.

    from ctc.compare import compare, markdown, write_workbook
    result = compare("ctc-results/quick", tool="my_codec:Jpeg444", anchor="jpeg", measure=False)
    print(markdown(result))
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from ctc.complexity_cache import ComplexityCache
from ctc.frozen import is_frozen
from ctc.report import ComplexityProgress, given_entry, largest_picture, measure_codecs
from ctc.report.data import BDRange, ReportData, ReportError, load
from ctc.report.style import (
    FLAG_FILL,
    LINE_HEIGHT,
    MIN_SCALE,
    PAGE_WIDTH,
    REGULAR,
    SECTION_FONT,
    TOP,
    WRAP,
    print_setup,
    title,
    wrapped_lines,
    write_header,
    write_row,
)
from ctc.report.summary import BDRow, bd_rows, geometric_mean_ratio
from ctc.report.workbook import METHOD_LABELS, NOTE_CHARS, fit_header_rows

__all__ = [
    "NOT_SAME_RUN",
    "Comparison",
    "Quantity",
    "cell_notes",
    "codec_lines",
    "compare",
    "compared_rows",
    "complexity_lines",
    "default_workbook",
    "load_pair",
    "markdown",
    "measure_pair",
    "output_problem",
    "timing_problem",
    "write_markdown",
    "write_workbook",
]

AGGREGATIONS = (("per_image_mean", "per-image mean"), ("average_curve", "average curve"))
"""The two dataset aggregations of a BD cell (BDCell attributes) and their names in headers."""
NOT_SAME_RUN = "not measured in the same run"


@dataclass(frozen=True)
class Quantity:
    """One line of the time and complexity table: the tool's and the anchor's value, their
    difference (tool − anchor) and ratio (tool / anchor).

    label names the quantity with its unit ("Encoder complexity (kMAC/pixel)"); fmt: the
    ctc.report.style.FORMATS key of the values. A ratio without per-codec values (EncT from the
    run's rows: a geometric mean of per-pair ratios) has tool and anchor None. pairs: the image
    × target pairs a ratio is over (None: not from the rows). source: where the figures come
    from, or why there are none.
    """

    label: str
    fmt: str
    tool: float | None
    anchor: float | None
    ratio: float | None
    source: str
    pairs: int | None = None

    @property
    def difference(self) -> float | None:
        """tool − anchor, in the quantity's unit; None where either is missing."""
        if self.tool is None or self.anchor is None:
            return None
        return self.tool - self.anchor


@dataclass
class Comparison:
    """The tool against the anchor: everything `ctc compare` shows.

    data: the report data of the two codecs only (one condition). bd: one BDRow per metric
    (ReportData.metrics()), cells by range name (data.bd_ranges). times: EncT then DecT.
    timing_problem: why the run's rows cannot give the time ratios (None: they do).
    complexity: kMAC/pixel and parameters, encoder and decoder. measurements: codec -> its
    ctc.complexity measurement, where there is one. notes: the report data's notes and why a
    measurement is missing.
    """

    data: ReportData
    tool: str
    anchor: str
    method: str
    bd: list[BDRow]
    times: list[Quantity]
    timing_problem: str | None
    complexity: list[Quantity]
    measurements: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# --- the rows -------------------------------------------------------------------------------


def load_pair(
    folder: str | Path, tool: str, anchor: str, condition: str | None = None
) -> ReportData:
    """The rows of `tool` and `anchor` (codec specs as the store names them) in one condition
    of a run folder, loaded as `ctc report` loads them (ctc.report.data.load).

    Raises ReportError: the tool is the anchor; the folder has no results; it has rows of
    several conditions and `condition` is None; a spec has no rows in the condition (the
    message names the specs that do).
    """
    if tool == anchor:
        raise ReportError(f"the tool and the anchor are the same codec ({tool!r})")
    data = load(folder, condition)
    if condition is None:
        _one_condition(Path(folder), data)
    missing = [spec for spec in (tool, anchor) if spec not in data.rows]
    if missing:
        name = data.condition.get("name", "")
        raise ReportError(
            f"no rows of {', '.join(map(repr, missing))} in condition {name} "
            f"({data.condition_hash[:12]}); codecs with rows there: {', '.join(data.codecs)}"
        )
    rows = {tool: data.rows[tool], anchor: data.rows[anchor]}
    versions = {codec: data.versions[codec] for codec in rows}
    return dataclasses.replace(data, rows=rows, versions=versions, notes=list(data.notes))


def _one_condition(folder: Path, data: ReportData) -> None:
    """Raise ReportError when the folder has rows of another condition than `data`'s: a
    comparison names its condition (--condition) rather than take the latest run's."""
    others = dict.fromkeys(
        r["condition_hash"] for r in data.runs if r["condition_hash"] != data.condition_hash
    )
    found = [f"{data.condition.get('name', '')} ({data.condition_hash[:12]})"]
    for chash in others:
        try:
            other = load(folder, chash)
        except ReportError:  # a run without finished rows
            continue
        found.append(f"{other.condition.get('name', '')} ({chash[:12]})")
    if len(found) > 1:
        raise ReportError(
            f"{folder} has rows of several conditions: {', '.join(found)}; choose one with "
            "--condition NAME|HASH"
        )


def compared_rows(data: ReportData, tool: str, anchor: str) -> dict[str, list[dict[str, Any]]]:
    """Each codec's rows of the (image, target bpp) pairs that both codecs have rows of."""
    keys = [{(r["image"], r["target_bpp"]) for r in data.rows[c]} for c in (tool, anchor)]
    both = keys[0] & keys[1]
    return {c: [r for r in data.rows[c] if (r["image"], r["target_bpp"]) in both]
            for c in (tool, anchor)}  # fmt: skip


# --- run times ------------------------------------------------------------------------------


def _machine(record: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """What a run's times depend on, from its record: (platform, machine, cpu_count, torch
    threads per job; runs recorded before --threads ran on torch's default)."""
    threads = record.get("threads", "torch's default")
    return record.get("platform"), record.get("machine"), record.get("cpu_count"), threads


def _describe_machine(machine: tuple[Any, Any, Any, Any]) -> str:
    platform, arch, cpus, threads = machine
    return f"{platform}, {arch}, {cpus} CPUs, {threads} torch thread(s) per job"


def timing_problem(data: ReportData, tool: str, anchor: str) -> str | None:
    """Why the rows' encode and decode times of the two codecs cannot be compared (None when
    they can): compared rows are frozen (timed elsewhere, another day; the message says whose:
    the tool's, the anchor's, or both), or they come from runs on different machines (the run
    records' platform, machine, cpu_count or torch threads per job differ, or are missing), or
    the codecs have no image × target pair in common."""
    compared = compared_rows(data, tool, anchor)
    if not compared[tool]:
        return "the tool and the anchor have no image × target pair in common"
    frozen = {}  # role -> how many of its compared rows are frozen, and from where
    for role, codec in (("tool", tool), ("anchor", anchor)):
        rows = [r for r in compared[codec] if is_frozen(r)]
        if rows:
            sources = ", ".join(sorted({str(r["bitstream"]) for r in rows}))
            frozen[role] = f"{len(rows)} of {len(compared[codec])} compared rows from {sources}"
    if frozen:
        what = "; ".join(f"{role}: {text}" for role, text in frozen.items())
        if len(frozen) == 1:
            what = next(iter(frozen.values()))
        return (
            f"{' and '.join(frozen)} rows are frozen ({what}: timed where and when they were "
            "frozen, not here)"
        )
    records = {run["id"]: run["record"] for run in data.runs}
    machines: dict[tuple[Any, Any, Any, Any], set[int]] = {}
    for rows in compared.values():
        for r in rows:
            record = records.get(r["run_id"])
            if record is None or None in _machine(record):
                return f"run {r['run_id']} has no record of the machine it ran on"
            machines.setdefault(_machine(record), set()).add(r["run_id"])
    if len(machines) > 1:
        runs = "; ".join(
            f"run{'s' * (len(ids) > 1)} {', '.join(map(str, sorted(ids)))} on "
            f"{_describe_machine(m)}"
            for m, ids in machines.items()
        )
        return f"the rows come from runs on different machines ({runs})"
    return None


def _row_ratios(data: ReportData, tool: str, anchor: str) -> list[Quantity]:
    """EncT and DecT from the run's rows: geometric means of tool / anchor over the pairs
    (timing_problem found them comparable: one machine)."""
    compared = compared_rows(data, tool, anchor)
    runs = sorted({r["run_id"] for rows in compared.values() for r in rows})
    record = next((run["record"] for run in data.runs if run["id"] == runs[-1]), {})
    where = f"run{'s' * (len(runs) > 1)} {', '.join(map(str, runs))} on "
    where += _describe_machine(_machine(record))
    out = []
    for name, column, what in (("EncT", "encode_seconds", "encode"),
                               ("DecT", "decode_seconds", "decode")):  # fmt: skip
        ratio, pairs = geometric_mean_ratio(compared[tool], compared[anchor], column)
        source = (
            f"geometric mean of tool / anchor over {pairs} image × target pairs of the "
            f"rows (one {what} each; {where})"
        )
        out.append(Quantity(f"{name}, {what} time (s)", "sec", None, None, ratio, source, pairs))
    return out


def _measured_ratios(
    measurements: dict[str, dict[str, Any]], tool: str, anchor: str, why: str
) -> list[Quantity]:
    """EncT and DecT from the complexity measurements' median CPU times, since the rows' times
    cannot be compared (`why`); None where a measurement is missing or the two were made on
    other machines or pictures."""
    lead = f"{NOT_SAME_RUN}: {why}; "
    entries = [measurements.get(tool), measurements.get(anchor)]
    problem = None
    if any(e is None for e in entries):
        problem = "no complexity measurement of " + " and ".join(
            role for role, e in zip(("the tool", "the anchor"), entries, strict=True) if e is None
        )
    else:
        places = {(e["platform"].get("cpu"), e["platform"].get("logical_cpus"),
                   e["platform"].get("torch_threads")) for e in entries}  # fmt: skip
        pictures = {(e["picture"]["width"], e["picture"]["height"]) for e in entries}
        if len(places) > 1:
            problem = "the complexity measurements were made on different machines"
        elif len(pictures) > 1:
            problem = "the complexity measurements are of pictures of different sizes"
    out = []
    for name, side, what in (("EncT", "encoder", "encode"), ("DecT", "decoder", "decode")):
        label = f"{name}, {what} time (s)"
        if problem:
            out.append(Quantity(label, "sec", None, None, None, f"{lead}{problem}: no ratio"))
            continue
        tool_s, anchor_s = (e[side]["cpu_seconds_median"] for e in entries)  # type: ignore[index]
        picture = entries[0]["picture"]  # type: ignore[index]
        runs = len(entries[0][side]["cpu_seconds"]) or 1  # type: ignore[index]
        size = f"{picture['width']}x{picture['height']}"
        named = picture["name"] if size in picture["name"] else f"{picture['name']} ({size})"
        source = (
            f"{lead}the ratio is of the complexity measurements' CPU times (median of {runs} "
            f"timed {what}{'s' * (runs != 1)} of the {named})"
        )
        out.append(Quantity(label, "sec", tool_s, anchor_s, _ratio(tool_s, anchor_s), source))
    return out


def _ratio(tool: float | None, anchor: float | None) -> float | None:
    """tool / anchor, None where either is missing or the anchor is not positive."""
    if tool is None or anchor is None or anchor <= 0:
        return None
    return tool / anchor


# --- complexity -----------------------------------------------------------------------------


def measure_pair(
    data: ReportData,
    *,
    given: Sequence[dict[str, Any]] = (),
    measure: bool = True,
    picture: np.ndarray | None = None,
    repeat: int = 2,
    cache: ComplexityCache | None = None,
    remeasure: bool = False,
    progress: ComplexityProgress | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """The complexity measurement of each codec of `data` (codec -> measurement) and the notes
    on each codec (codec -> why it has none, or what differs), as `ctc report` gets them
    (ctc.report.measure_codecs: a `given` entry of the codec's version or name, else the
    cache, else measured here and cached). picture: uint8 (H, W, 3), default the astronaut
    test picture at the run's largest image size."""
    from ctc.complexity import test_picture

    if measure and picture is None:
        picture = test_picture(*largest_picture(data))
    found, notes = {}, {}
    for codec in data.codecs:
        one = dataclasses.replace(
            data, rows={codec: data.rows[codec]}, versions={codec: data.versions[codec]}
        )
        entry = given_entry(given, codec, data.versions[codec])
        results, said = measure_codecs(
            one, picture, repeat, given=[entry] if entry else [], measure=measure, cache=cache,
            remeasure=remeasure, progress=progress,
        )  # fmt: skip
        notes[codec] = [note.removeprefix(f"{codec}: ") for note in said]
        if results:
            found[codec] = results[0]
    return found, notes


COMPLEXITY = (
    ("Encoder complexity (kMAC/pixel)", "k", "encoder", "kmac_per_pixel"),
    ("Decoder complexity (kMAC/pixel)", "k", "decoder", "kmac_per_pixel"),
    ("Encoder parameters (count)", "int", "encoder", "parameters"),
    ("Decoder parameters (count)", "int", "decoder", "parameters"),
)
"""The complexity lines: (label with unit, format, side, measurement field)."""


def complexity_lines(
    measurements: dict[str, dict[str, Any]],
    tool: str,
    anchor: str,
    notes: dict[str, list[str]] | None = None,
) -> list[Quantity]:
    """kMAC/pixel and parameters (total touched at some rate point) of encoder and decoder, for
    both codecs, from their measurements; notes: why a codec has none (measure_pair). A codec
    without torch networks has neither (MACs and parameters do not apply: n/a, as the report's
    Complexity sheet leaves them out)."""
    notes = notes or {}
    said = [_measurement_source(measurements.get(c), notes.get(c, [])) for c in (tool, anchor)]
    if said[0] == said[1]:
        source = f"tool and anchor: {said[0]}"
    else:
        source = f"tool {tool}: {said[0]}; anchor {anchor}: {said[1]}"
    out = []
    for label, fmt, side, key in COMPLEXITY:
        values = [_complexity_value(measurements.get(c), side, key) for c in (tool, anchor)]
        out.append(Quantity(label, fmt, values[0], values[1], _ratio(*values), source))
    return out


def _measurement_source(entry: dict[str, Any] | None, notes: Sequence[str]) -> str:
    """Where a codec's complexity figures come from, in words, or why it has none."""
    if entry is None:
        return "; ".join(notes) or "no measurement"
    if not entry.get("networks"):
        return "no torch network, MACs and parameters do not apply"
    picture, knob = entry["picture"], entry["knob"]
    return (
        f"ctc complexity on {picture['width']}x{picture['height']}, {knob['name']} = "
        f"{knob['value']:g} (torch FlopCounterMode; parameters touched at some rate point)"
    )


def _complexity_value(entry: dict[str, Any] | None, side: str, key: str) -> float | None:
    """One figure of a measurement: kMAC/pixel, or the parameters' total; None without one or
    for a codec without torch networks."""
    if entry is None or not entry.get("networks"):
        return None
    value = entry[side][key]
    return value["total"] if key == "parameters" else value


# --- the comparison -------------------------------------------------------------------------


def compare(
    folder: str | Path,
    tool: str,
    anchor: str,
    *,
    condition: str | None = None,
    method: str = "pchip",
    complexity: Sequence[dict[str, Any]] | None = None,
    measure: bool = True,
    complexity_picture: np.ndarray | None = None,
    complexity_repeat: int = 2,
    complexity_cache: ComplexityCache | None = None,
    remeasure: bool = False,
    progress: ComplexityProgress | None = None,
) -> Comparison:
    """Compare `tool` with `anchor` (codec specs of a run folder) in one condition.

    BD-rates: bd_rows of the pair (every metric, range and aggregation, with the report's
    flags). EncT/DecT: geometric means over the rows' image × target pairs when both codecs
    were timed for real on one machine (timing_problem), else the complexity measurements'
    median CPU times, saying so. Complexity: `complexity` entries (`ctc complexity --json`),
    else with `measure` the cache or a measurement at the run's largest image size (as
    build_report). Raises ReportError for what cannot be compared (see load_pair).
    """
    if method not in METHOD_LABELS:
        raise ReportError(f"method must be one of {tuple(METHOD_LABELS)}, not {method!r}")
    data = load_pair(folder, tool, anchor, condition)
    bd = bd_rows(data, [anchor], method)
    measurements, notes = measure_pair(
        data, given=complexity or (), measure=measure, picture=complexity_picture,
        repeat=complexity_repeat, cache=complexity_cache, remeasure=remeasure, progress=progress,
    )  # fmt: skip
    problem = timing_problem(data, tool, anchor)
    if problem is None:
        times = _row_ratios(data, tool, anchor)
    else:
        times = _measured_ratios(measurements, tool, anchor, problem)
    return Comparison(
        data=data, tool=tool, anchor=anchor, method=method, bd=bd, times=times,
        timing_problem=problem, complexity=complexity_lines(measurements, tool, anchor, notes),
        measurements=measurements,
        notes=[*data.notes, *(f"{codec}: {n}" for codec, said in notes.items() for n in said)],
    )  # fmt: skip


def cell_notes(row: BDRow, ranges: Sequence[BDRange]) -> list[str]:
    """What a BD row's cells flag, as the report's Summary notes them (outliers: |BD-rate| >
    100 %; overlap < 75 %; why a value is missing; images left out), each text once with the
    ranges it holds for: "low, all: overlap < 75 %: astro, <average curve>"."""
    ranges_of: dict[str, list[str]] = {}
    for bpp_range in ranges:
        cell = row.cells[bpp_range.name]
        what = []
        if cell.outliers:
            what.append(f"outliers |BD| > 100 %: {', '.join(cell.outliers)}")
        if cell.low_overlap:
            what.append(f"overlap < 75 %: {', '.join(cell.low_overlap)}")
        what += [text for text in (cell.error, cell.left_out_note) if text]
        for text in what:
            ranges_of.setdefault(text, []).append(bpp_range.name)
    notes = [f"{', '.join(names)}: {text}" for text, names in ranges_of.items()]
    if row.left_out:
        notes.append(f"left out (metric missing): {', '.join(row.left_out)}")
    return notes


def codec_lines(c: Comparison) -> list[tuple[str, str, str, str]]:
    """(role, spec, what runs ("" where the spec says it all: ReportData.label), exact version
    [with the source of frozen rows])."""
    out = []
    for role, codec in (("tool", c.tool), ("anchor", c.anchor)):
        frozen = sorted({str(r["bitstream"]) for r in c.data.rows[codec] if is_frozen(r)})
        version = c.data.versions[codec]
        if frozen:
            version += f" [rows from {', '.join(frozen)}]"
        out.append((role, codec, c.data.label(codec), version))
    return out


# --- outputs --------------------------------------------------------------------------------


def safe_name(spec: str, most: int = 60) -> str:
    """A codec spec as part of a file name: letters, digits, '.', '_', '-' only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", spec).strip("._")[:most] or "codec"


def default_workbook(folder: str | Path, tool: str, anchor: str) -> Path:
    """RUN_DIR/compare-TOOL-vs-ANCHOR.xlsx, the specs made safe for a file name."""
    return Path(folder) / f"compare-{safe_name(tool)}-vs-{safe_name(anchor)}.xlsx"


def output_problem(path: str | Path) -> str | None:
    """Why `path` cannot be an output file of the comparison, in words ("... is a directory,
    not a file"; a folder above it is a file), or None: it can, its missing folders made by
    write_workbook and write_markdown."""
    path = Path(path)
    if path.is_dir():
        return f"{path} is a directory, not a file"
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else f"{parent} is not a folder (in {path})"
    return None


def write_markdown(c: Comparison, path: str | Path) -> Path:
    """The comparison's Markdown (markdown()) written to `path`, its missing folders made.
    Raises OSError where the file cannot be written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(c), encoding="utf-8")
    return path


def _number(value: float | None, fmt: str) -> str:
    """A value as the Markdown shows it: BD-rate "+1.23", ratio "1.083", count "1,234",
    seconds "0.000312"."""
    if value is None:
        return "n/a"
    return {
        "pct": f"{value:+.2f}",
        "ratio": f"{value:.3f}",
        "int": f"{value:,.0f}",
        "k": f"{value:.3f}",
        "sec": f"{value:.4g}",  # 4 significant digits: a small picture codes in microseconds
    }[fmt]


def _md(text: str) -> str:
    """Text for a Markdown table cell: pipes escaped, on one line."""
    return " ".join(str(text).split()).replace("|", "\\|")


def bd_headers(ranges: Sequence[BDRange]) -> list[str]:
    """The BD table's headers, units included: metric, images, each range × aggregation."""
    headers = ["Metric", "Images (count)"]
    headers += [f"BD-rate, {r.label}, {name} (%)" for r in ranges for _, name in AGGREGATIONS]
    return [*headers, "Flags and notes"]


QUANTITY_HEADERS = ("Quantity (unit)", "Tool (quantity's unit)", "Anchor (quantity's unit)",
                    "Tool − anchor (quantity's unit)", "Tool / anchor (ratio)",
                    "Source")  # fmt: skip


def markdown(c: Comparison) -> str:
    """The comparison as Markdown for a contribution document: the BD-rate table (metric rows ×
    range/aggregation columns), the time and complexity table, then the codecs and the
    condition, and the notes."""
    ranges = c.data.bd_ranges
    lines = [
        f"**BD-rate (%) of {_md(c.tool)} (tool) against {_md(c.anchor)} (anchor).** Negative: "
        "fewer bits at equal quality. Per-image mean: the mean of the per-image BD-rates; "
        f"average curve: the BD-rate of the dataset-average curves. {METHOD_LABELS[c.method]}; "
        "MS-SSIM integrated in dB.",
        "",
        _md_row(bd_headers(ranges)),
        _md_row(["---", "---:", *["---:"] * (2 * len(ranges)), "---"]),
    ]
    for row in c.bd:
        cells = [row.metric.label, str(row.cells[ranges[-1].name].images)]
        for bpp_range in ranges:
            cell = row.cells[bpp_range.name]
            cells += [_number(getattr(cell, key), "pct") for key, _ in AGGREGATIONS]
        lines.append(_md_row([*cells, "; ".join(cell_notes(row, ranges))]))
    lines += ["", f"**Run time and complexity of {_md(c.tool)} against {_md(c.anchor)}.**", ""]
    lines += [_md_row(list(QUANTITY_HEADERS)), _md_row(["---", *["---:"] * 4, "---"])]
    for q in (*c.times, *c.complexity):
        lines.append(_md_row([q.label, *_shown_values(q), _number(q.ratio, "ratio"), q.source]))
    lines.append("")
    for role, codec, label, version in codec_lines(c):
        what = f": {label}" if label else ""
        lines.append(f"- {role.capitalize()}: `{codec}`{what} (version: {version})")
    name = c.data.condition.get("name", "")
    lines.append(f"- Condition: {name}, hash {c.data.condition_hash}")
    lines += [f"- Note: {note}" for note in c.notes]
    return "\n".join(lines) + "\n"


def _shown_values(q: Quantity) -> list[str]:
    """The tool, anchor and difference cells of a quantity: "—" for a ratio of the rows'
    times, which has no per-codec value (a geometric mean of per-pair ratios), else the values."""
    values = (q.tool, q.anchor, q.difference)
    if q.pairs is not None:
        return ["—" if v is None else _number(v, q.fmt) for v in values]
    return [_number(v, q.fmt) for v in values]


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_md(cell) for cell in cells) + " |"


SHEET = "Compare"
FIRST_WIDTH, LAST_WIDTH = 30.0, 38.0
"""Widths (Excel units) of the first column (metric, quantity) and of the last (BD flags,
sources), which wrap."""
NUMBER_WIDTHS = (11.0, 20.0)
"""The narrowest and the widest number column. Between them, as wide as a landscape page holds
at the smallest print scale (ctc.report.style.MIN_SCALE): the sheet prints one page wide (up
to four BD ranges besides all points), its headers wrap onto fewer lines, and more rows fit on
the page (two ranges besides all points and six metrics fit on one page)."""
SPACER_HEIGHT = 8.0
"""Points: the empty row before a section."""


def _column_widths(last: int) -> dict[int, float]:
    """Column -> width for a sheet of `last` columns: first, numbers, last."""
    room = PAGE_WIDTH["landscape"] / MIN_SCALE - 0.71 * last - FIRST_WIDTH - LAST_WIDTH - 1
    number = min(max(room / (last - 2), NUMBER_WIDTHS[0]), NUMBER_WIDTHS[1])
    return {c: FIRST_WIDTH if c == 1 else LAST_WIDTH if c == last else number
            for c in range(1, last + 1)}  # fmt: skip


def write_workbook(c: Comparison, path: str | Path) -> Path:
    """The comparison as a one-sheet workbook (openpyxl): the BD-rate table, the time and
    complexity table, the codecs, the condition, the notes, and the BD notes that the table
    cut (at NOTE_CHARS, as the report's Summary) in full; labels and units in every
    header, numbers stored as numbers, printed one page wide (ctc.report.style.print_setup).
    Raises OSError where the file cannot be written."""
    from openpyxl import Workbook

    path = Path(path)
    wb = Workbook()
    ws = wb.active
    ws.title = SHEET
    ranges = c.data.bd_ranges
    last = max(3 + 2 * len(ranges), 6)
    for column, width in _column_widths(last).items():
        ws.column_dimensions[get_column_letter(column)].width = width
    name = c.data.condition.get("name", "")
    title(ws, 1, f"{c.tool} (tool) against {c.anchor} (anchor)")
    _text(ws, 2, 1, last, f"Condition {name} ({c.data.condition_hash[:12]}), run "
          f"{c.data.folder.name}. BD-rate: negative, fewer bits at equal quality; "
          f"{METHOD_LABELS[c.method]}; MS-SSIM integrated in dB. Flags: per-image |BD-rate| > "
          "100 %, quality overlap < 75 %.")  # fmt: skip
    row, in_full = _bd_table(ws, 3, c, ranges, last)
    for table in (_quantity_table, _codecs_table):
        ws.row_dimensions[row].height = SPACER_HEIGHT
        row = table(ws, row + 1, c, last)
    for note in c.notes:
        _text(ws, row, 1, last, f"Note: {note}")
        row += 1
    if in_full:  # the BD table's notes that its rows cut, whole, the width of the sheet
        ws.row_dimensions[row].height = SPACER_HEIGHT
        ws.cell(row=row + 1, column=1, value="BD notes in full").font = SECTION_FONT
        row += 2
        for number, (metrics, note) in enumerate(in_full, start=1):
            _text(ws, row, 1, last, f"{number}. {', '.join(metrics)}: {note}")
            row += 1
    fit_header_rows(ws)
    print_setup(ws, header=f"condition {name}, run {c.data.folder.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def _text(ws: Worksheet, row: int, first: int, last: int, text: str) -> None:
    """`text` in row `row`, merged over columns first..last, wrapped, the row tall enough."""
    cell = ws.cell(row=row, column=first, value=text)
    cell.alignment = WRAP
    if last > first:
        ws.merge_cells(start_row=row, start_column=first, end_row=row, end_column=last)
    width = sum(ws.column_dimensions[get_column_letter(col)].width + 0.71
                for col in range(first, last + 1))  # fmt: skip
    height = ws.row_dimensions[row].height or 15
    lines = wrapped_lines(text, width, REGULAR)
    ws.row_dimensions[row].height = max(height, LINE_HEIGHT * lines + 3)


def _bd_table(
    ws: Worksheet, row: int, c: Comparison, ranges: Sequence[BDRange], last: int
) -> tuple[int, list[tuple[list[str], str]]]:
    """The BD-rate table from `row`: a header, then one row per metric; returns the next row
    and the notes to list in full below ((metrics, note), numbered from 1).

    As the report's Summary (ctc.report.workbook.NOTE_CHARS): a row's note longer than
    NOTE_CHARS is cut, "… (note N below)" included, so that a row stays a few lines tall and
    the sheet short; the note is listed whole under the tables, once for the metrics whose
    notes are the same."""
    headers = bd_headers(ranges)
    in_full: list[tuple[list[str], str]] = []
    write_header(ws, row, headers)
    flags = len(headers)
    if last > flags:
        ws.merge_cells(start_row=row, start_column=flags, end_row=row, end_column=last)
    for bd in c.bd:
        row += 1
        values: list[Any] = [bd.metric.label, bd.cells[ranges[-1].name].images]
        for bpp_range in ranges:
            cell = bd.cells[bpp_range.name]
            values += [getattr(cell, key) for key, _ in AGGREGATIONS]
        write_row(ws, row, values, [None, "int", *["pct"] * (2 * len(ranges))])
        notes = "; ".join(cell_notes(bd, ranges))
        if len(notes) > NOTE_CHARS:
            number = next((n for n, (_, text) in enumerate(in_full, 1) if text == notes), 0)
            if number:
                in_full[number - 1][0].append(bd.metric.label)
            else:
                in_full.append(([bd.metric.label], notes))
                number = len(in_full)
            more = f"… (note {number} below)"
            notes = notes[: NOTE_CHARS - len(more)].rstrip() + more
        if notes:
            _text(ws, row, flags, last, notes)
            ws.cell(row=row, column=flags).fill = FLAG_FILL
        for column in range(1, flags):
            ws.cell(row=row, column=column).alignment = TOP
    return row + 1, in_full


def _quantity_table(ws: Worksheet, row: int, c: Comparison, last: int) -> int:
    """The time and complexity table from `row`; returns the next free row."""
    ws.cell(row=row, column=1, value="Run time and complexity").font = SECTION_FONT
    row += 1
    write_header(ws, row, QUANTITY_HEADERS)
    if last > 6:
        ws.merge_cells(start_row=row, start_column=6, end_row=row, end_column=last)
    for q in (*c.times, *c.complexity):
        row += 1
        values = [q.tool, q.anchor, q.difference]
        if q.pairs is not None:  # a ratio of the rows' times: no per-codec value
            values = ["—" if v is None else v for v in values]
        write_row(ws, row, [q.label, *values, q.ratio], [None, q.fmt, q.fmt, q.fmt, "ratio"])
        _text(ws, row, 6, last, q.source)
        for column in range(1, 6):
            ws.cell(row=row, column=column).alignment = TOP
    return row + 1


CODEC_COLUMNS = ((1, 1), (2, 3), (4, 5))
"""The codecs table's role, spec and label columns; the version runs from 6 to the last."""


def _codecs_table(ws: Worksheet, row: int, c: Comparison, last: int) -> int:
    """What the tool and the anchor are (spec, label, exact version), then the condition."""
    ws.cell(row=row, column=1, value="Codecs and condition").font = SECTION_FONT
    row += 1
    spans = (*CODEC_COLUMNS, (6, last))
    headers = ("Role", "Codec spec", "What runs", "Exact version [frozen rows]")
    for (first, end), text in zip(spans, headers, strict=True):
        write_header(ws, row, [text], column=first)
        if end > first:
            ws.merge_cells(start_row=row, start_column=first, end_row=row, end_column=end)
    for role, *values in codec_lines(c):
        row += 1
        values[1] = values[1] or "—"  # no label: the spec says what runs
        for (first, end), value in zip(spans, [role.capitalize(), *values], strict=True):
            _text(ws, row, first, end, value)
    row += 1
    name = c.data.condition.get("name", "")
    _text(ws, row, 1, 1, "Condition")
    _text(ws, row, 2, last, f"{name}, hash {c.data.condition_hash}")
    return row + 1
