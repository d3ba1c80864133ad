"""Test conditions: YAML files (bundled in ctc/conditions/, or any path) validated on load.

Every convention that the sources disagree on is an explicit field; docs/ctc.md describes each.
A condition's hash covers the fields that change a result row's values (tolerance, rate control,
colour conventions, metrics); targets, dataset, codecs and output folder only select which rows
exist, so adding a target or an image keeps every finished row valid.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

import yaml

from ctc import yamlfile
from ctc.clic.rules import TRACKS, ClicTrack
from ctc.metrics import METRICS, OPTIONS, MetricConfig
from ctc.metrics.colour import KR_KB
from ctc.ratecontrol import Tolerance

SCOPES = ("per_image", "dataset_average", "dataset")
"""per_image: each image within the tolerance of each target; dataset_average: the mean bpp
over the dataset; dataset: no image and no mean is judged against a target, the targets are a
sweep of RD points from which the condition's `clic` rules judge the whole set."""


class ConditionError(ValueError):
    """A condition file is missing, unreadable or invalid; the message names file and field."""


@dataclass(frozen=True)
class Condition:
    """One set of common test conditions."""

    name: str
    description: str
    sources: tuple[str, ...]
    targets_bpp: tuple[float, ...]
    tolerance: Tolerance
    tolerance_scope: str
    max_encodes: int
    matrix: str
    bit_depth: int
    metrics: dict[str, dict[str, str]]  # metric -> its options, defaults filled in
    codecs: tuple[str, ...]
    anchors: tuple[str, ...]
    dataset: str
    output: str
    bd_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (low, high)
    clic: ClicTrack | None = None  # the dataset-level rules of a CLIC track (scope "dataset")

    @property
    def metric_config(self) -> MetricConfig:
        return MetricConfig(self.matrix, self.bit_depth, self.metrics)

    def hashed_fields(self) -> dict[str, Any]:
        """The fields that determine a result row's values (see the module docstring)."""
        return {
            "tolerance": asdict(self.tolerance),
            "tolerance_scope": self.tolerance_scope,
            "max_encodes": self.max_encodes,
            "colour": {"matrix": self.matrix, "range": "full", "bit_depth": self.bit_depth},
            "metrics": dict(sorted(self.metrics.items())),
        }

    @property
    def hash(self) -> str:
        canonical = json.dumps(self.hashed_fields(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """Everything, as plain JSON-able data (for the run record)."""
        return asdict(self)


class _Fields:
    """Typed access to one mapping of a condition file, with errors that name the field."""

    def __init__(self, origin: str, prefix: str, data: Any, allowed: tuple[str, ...]) -> None:
        self.origin, self.prefix = origin, prefix
        if not isinstance(data, dict):
            self.fail("", f"expected a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            self.fail(unknown[0], f"unknown field; allowed: {', '.join(allowed)}")
        self.data = data

    def fail(self, key: str, message: str) -> NoReturn:
        where = f"{self.prefix}{key}" if key else self.prefix.rstrip(".") or "top level"
        raise ConditionError(f"{self.origin}: {where}: {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                self.fail(key, "required field is missing")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            self.fail(key, f"expected {names}, got {value!r}")
        return value

    def number(self, key: str, default: Any = ...) -> float:
        raw = self.get(key, (int, float), default)
        value = _finite(raw)
        if value is None:
            self.fail(key, f"expected a finite number, got {_shown(raw)}")
        return value

    def choice(self, key: str, options: tuple[str, ...], default: Any = ...) -> str:
        raw = self.get(key, (str, int), default)
        value = str(raw)
        if value not in options:
            shown = repr(value) if isinstance(raw, str) else _shown(raw)
            self.fail(key, f"expected one of {', '.join(options)}, got {shown}")
        return value

    def names(self, key: str, default: Any = ...) -> tuple[str, ...]:
        value = self.get(key, list, default)
        if not all(isinstance(v, str) and v for v in value):
            self.fail(key, f"expected a list of names, got {value!r}")
        return tuple(value)


def _finite(value: Any) -> float | None:
    """A number of a condition file as a finite float; None for one that is not a number (a
    bool), infinite, NaN, or an integer too large for a float (YAML reads 400 digits as an
    int, which float() refuses with OverflowError)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _shown(value: Any) -> str:
    """A value for an error message: an integer too long to read as its number of digits."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return f"an integer of {len(str(abs(value)))} digits"
    return repr(value)


def _shown_list(value: Any) -> str:
    """A list (or any value) for an error message, long integers shortened as _shown does."""
    if isinstance(value, list):
        return f"[{', '.join(_shown(v) for v in value)}]"
    return _shown(value)


def _targets(f: _Fields) -> tuple[float, ...]:
    raw = f.get("targets_bpp", list)
    if not raw or not all(isinstance(t, int | float) and not isinstance(t, bool) for t in raw):
        f.fail("targets_bpp", f"expected a non-empty list of numbers, got {_shown_list(raw)}")
    targets = tuple(_finite(t) for t in raw)
    if any(t is None or t <= 0 for t in targets):
        f.fail("targets_bpp", "every target must be a positive finite bpp")
    if len(set(targets)) != len(targets):
        f.fail("targets_bpp", "targets must be distinct")
    return tuple(sorted(targets))


def _tolerance(origin: str, data: Any) -> tuple[Tolerance, str]:
    f = _Fields(origin, "tolerance.", data, ("min_percent", "max_percent", "scope", "never_exceed"))
    low, high = f.number("min_percent"), f.number("max_percent")
    if not -100.0 < low <= 0.0:
        f.fail("min_percent", f"expected a value in (-100, 0], got {low}")
    if high < 0.0:
        f.fail("max_percent", f"expected a value >= 0, got {high}")
    never_exceed = f.get("never_exceed", bool, False)
    return Tolerance(low, high, never_exceed), f.choice("scope", SCOPES)


def _colour(origin: str, data: Any) -> tuple[str, int]:
    f = _Fields(origin, "colour.", data, ("matrix", "range", "bit_depth"))
    matrix = f.choice("matrix", tuple(KR_KB))
    f.choice("range", ("full",))
    depth = f.get("bit_depth", int)
    if not 8 <= depth <= 16:
        f.fail("bit_depth", f"expected 8..16, got {_shown(depth)}")
    return matrix, depth


def _metrics(origin: str, data: Any, bit_depth: int) -> dict[str, dict[str, str]]:
    f = _Fields(origin, "metrics.", data, METRICS)
    if not f.data:
        f.fail("", "select at least one metric")
    out: dict[str, dict[str, str]] = {}
    for name in METRICS:
        if name not in f.data:
            continue
        g = _Fields(origin, f"metrics.{name}.", f.data[name] or {}, tuple(OPTIONS[name]))
        out[name] = {key: g.choice(key, values, values[0]) for key, values in OPTIONS[name].items()}
    if "vmaf" in out and bit_depth not in (8, 10):
        f.fail("vmaf", f"VMAF takes 8- or 10-bit input; colour.bit_depth is {bit_depth}")
    return out


def _bd_ranges(origin: str, data: dict) -> dict[str, tuple[float, float]]:
    """Named bpp ranges for BD-rates: {name: [low, high]}, low < high, both positive."""
    out = {}
    for name, bounds in data.items():
        where = f"{origin}: bd_ranges.{name if isinstance(name, str) else _shown(name)}"
        if not isinstance(name, str) or not name.isidentifier() or name.lower() == "all":
            raise ConditionError(f"{where}: a range name is a word other than 'all' (kept for "
                                 "every point)")  # fmt: skip
        numbers = [_finite(b) for b in bounds] if isinstance(bounds, list) else []
        if len(numbers) != 2 or None in numbers or not 0 < numbers[0] < numbers[1]:
            raise ConditionError(f"{where}: expected [low, high] with 0 < low < high, got "
                                 f"{_shown_list(bounds)}")  # fmt: skip
        out[name] = (numbers[0], numbers[1])
    return out


MAX_BUDGET_BPP = 48.0  # 16-bit RGB uncoded; a budget above it is no compression
MAX_DECODER_BYTES = 10**12


def _clic(origin: str, data: Any) -> ClicTrack:
    """The `clic:` block: a track and its budgets (low_rate) or floors (transparent)."""
    f = _Fields(
        origin, "clic.", data,
        ("track", "budgets_bpp", "min_psnr", "min_msssim", "max_decoder_bytes"),
    )  # fmt: skip
    track = f.choice("track", TRACKS)
    raw = f.get("budgets_bpp", list, [])
    budgets = tuple(_finite(b) for b in raw)
    in_range = all(b is not None and 0 < b <= MAX_BUDGET_BPP for b in budgets)
    if not in_range or len(set(budgets)) != len(budgets):
        f.fail("budgets_bpp", f"expected distinct bpp values in (0, {MAX_BUDGET_BPP}], got "
               f"{_shown_list(raw)}")  # fmt: skip
    min_psnr = f.number("min_psnr", None) if f.data.get("min_psnr") is not None else None
    min_msssim = f.number("min_msssim", None) if f.data.get("min_msssim") is not None else None
    if min_psnr is not None and not 0 < min_psnr < 200:
        f.fail("min_psnr", f"expected a PSNR in dB in (0, 200), got {min_psnr}")
    if min_msssim is not None and not 0 < min_msssim < 1:
        f.fail("min_msssim", f"expected an MS-SSIM in (0, 1), got {min_msssim}")
    limit = f.get("max_decoder_bytes", (int, type(None)), None)
    if limit is not None and not 0 < limit <= MAX_DECODER_BYTES:
        f.fail("max_decoder_bytes", f"expected a number of bytes in 1..{MAX_DECODER_BYTES:.0e}, "
               f"got {_shown(limit)}")  # fmt: skip
    if track == "low_rate" and not budgets:
        f.fail("budgets_bpp", "a low_rate track needs at least one budget")
    if track == "low_rate" and (min_psnr, min_msssim) != (None, None):
        f.fail("track", "a low_rate track has budgets_bpp, not min_psnr or min_msssim")
    if track == "transparent" and budgets:
        f.fail("budgets_bpp", "a transparent track has floors (min_psnr, min_msssim), no budgets")
    if track == "transparent" and (min_psnr, min_msssim) == (None, None):
        f.fail("track", "a transparent track needs min_psnr, min_msssim or both")
    return ClicTrack(track, budgets, min_psnr, min_msssim, limit)


def parse_condition(data: Any, origin: str) -> Condition:
    """Validate the parsed YAML of a condition file; `origin` names it in error messages."""
    top = (
        "name", "description", "sources", "targets_bpp", "tolerance", "rate_control", "colour",
        "metrics", "codecs", "anchors", "dataset", "output", "bd_ranges", "clic",
    )  # fmt: skip
    f = _Fields(origin, "", data, top)
    tolerance, scope = _tolerance(origin, f.get("tolerance", dict))
    clic = _clic(origin, f.get("clic", dict)) if "clic" in f.data else None
    if (scope == "dataset") != (clic is not None):
        f.fail("tolerance", "scope: dataset goes with a clic block, and a clic block with it "
               f"(scope is {scope}, clic block {'present' if clic else 'absent'})")  # fmt: skip
    rc = _Fields(origin, "rate_control.", f.get("rate_control", dict, {}), ("max_encodes",))
    max_encodes = rc.get("max_encodes", int, 12)
    if not 1 <= max_encodes <= 100:
        rc.fail("max_encodes", f"expected 1..100, got {_shown(max_encodes)}")
    matrix, depth = _colour(origin, f.get("colour", dict))
    codecs, anchors = f.names("codecs", ()), f.names("anchors", ())
    if not codecs and not anchors:
        f.fail("codecs", "a condition needs at least one codec or anchor")
    metrics = _metrics(origin, f.get("metrics", dict), depth)
    needed = () if clic is None else ("psnr_rgb",) + ("msssim_rgb",) * (clic.min_msssim is not None)
    if any(m not in metrics for m in needed):
        f.fail("metrics", f"the clic rules need {' and '.join(needed)} (aggregate PSNR from "
               "each image's RGB squared error, aggregate MS-SSIM from msssim_rgb)")  # fmt: skip
    return Condition(
        name=f.get("name", str),
        description=f.get("description", str, ""),
        sources=f.names("sources", ()),
        targets_bpp=_targets(f),
        tolerance=tolerance,
        tolerance_scope=scope,
        max_encodes=max_encodes,
        matrix=matrix,
        bit_depth=depth,
        metrics=metrics,
        codecs=codecs,
        anchors=anchors,
        dataset=f.get("dataset", str),
        output=f.get("output", str),
        bd_ranges=_bd_ranges(origin, f.get("bd_ranges", dict, {})),
        clic=clic,
    )


def bundled() -> list[str]:
    """Names of the conditions that ship in ctc/conditions/."""
    folder = resources.files("ctc") / "conditions"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def load_condition(name_or_path: str | Path) -> Condition:
    """A bundled condition by name (e.g. "fvc") or a YAML file by path."""
    text_name = str(name_or_path)
    if text_name in bundled():
        source = resources.files("ctc") / "conditions" / f"{text_name}.yaml"
        origin = f"{text_name}.yaml"
    else:
        source = Path(name_or_path)
        origin = str(source)
        if not source.is_file():
            raise ConditionError(
                f"no condition {text_name!r}: not a bundled name ({', '.join(bundled())}) "
                "and not a file"
            )
    try:
        if isinstance(source, Path):
            data = yamlfile.read(source)
        else:  # a bundled condition, read through importlib.resources
            data = yamlfile.load(source.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise ConditionError(f"{origin}: cannot read: {str(e).splitlines()[0]}") from None
    return parse_condition(data, origin)
