"""Codec discovery: the `ctc.codecs` entry-point group, or a class named by its module.

A distribution registers a codec class in its pyproject.toml:

    [project.entry-points."ctc.codecs"]
    jpeg = "anchors.jpeg:JpegCodec"

Wherever ctc takes a codec (`ctc run --codec`, a condition's `codecs` and `anchors`, `ctc
complexity`), it takes a codec spec:

- `NAME`: the class registered as NAME, constructed without arguments;
- `NAME:ARGUMENT`: the class registered as NAME, constructed with one text argument (nic:MODEL
  selects a zoo model or a model file);
- `MODULE:CLASS`: a class importable from the Python path or the current folder (MODULE is not a
  registered name), constructed without arguments: a codec that is not packaged.

The spec is the codec's name in results, so a worker process loads the same codec from it.
Loading imports the module, constructs the object and checks that it has what the Codec
interface needs. Any failure becomes a CodecLoadError that names that codec only, so one broken
codec does not stop the others.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib.metadata import entry_points

from ctc.codec import Codec

GROUP = "ctc.codecs"


class CodecLoadError(RuntimeError):
    """A codec is not registered, or failed to import, construct or describe itself."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"codec {name!r}: {reason}")
        self.name = name
        self.reason = reason


def registered() -> list[str]:
    """Names of the registered codecs, sorted."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def _check(name: str, codec: object) -> Codec:
    missing = [a for a in ("name", "knob", "version", "encode", "decode") if not hasattr(codec, a)]
    if missing:
        raise CodecLoadError(name, f"does not implement the Codec interface (lacks {missing})")
    knob = codec.knob
    for attr in ("name", "kind", "low", "high", "rate_increases"):
        if not hasattr(knob, attr):
            raise CodecLoadError(name, f"its knob lacks {attr!r}")
    if knob.kind not in ("integer", "continuous") or not knob.low < knob.high:
        raise CodecLoadError(name, f"invalid knob {knob!r}")
    version = codec.version()
    if not isinstance(version, str) or not version:
        raise CodecLoadError(name, "version() must return a non-empty string")
    return codec  # type: ignore[return-value]


def well_formed(spec: str) -> bool:
    """Whether `spec` has one of the forms NAME, NAME:ARGUMENT, MODULE:CLASS (nothing empty)."""
    name, colon, rest = spec.partition(":")
    return bool(name) and (not colon or bool(rest))


def load_codec(spec: str) -> Codec:
    """Import, construct and check the codec of a spec (NAME, NAME:ARGUMENT or MODULE:CLASS;
    see the module docstring). Raises CodecLoadError naming the spec."""
    if not well_formed(spec):
        raise CodecLoadError(spec, "expected NAME, NAME:ARGUMENT or MODULE:CLASS")
    name, colon, rest = spec.partition(":")
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not colon and not matches:
        known = ", ".join(registered()) or "none"
        raise CodecLoadError(
            spec,
            f"not registered in entry-point group {GROUP!r} (have: {known}); a class that is not "
            "registered is named MODULE:CLASS",
        )
    try:
        if matches:
            factory = matches[0].load()
            codec = factory(rest) if colon else factory()
        else:
            codec = _import_class(name, rest)()
        return _check(spec, codec)
    except CodecLoadError:
        raise
    except (Exception, SystemExit) as e:  # a codec's own failure is reported for it alone
        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CodecLoadError(spec, f"failed to load: {type(e).__name__}: {message}") from e


def _import_class(module_name: str, qualname: str) -> type:
    """MODULE's attribute QUALNAME (dotted for a nested class); the current folder is searched
    after the Python path, as `python -m` would find a module there."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name.split(".")[0] or os.getcwd() in sys.path:
            raise
        sys.path.append(os.getcwd())
        module = importlib.import_module(module_name)
    value: object = module
    for part in qualname.split("."):
        if not hasattr(value, part):
            raise AttributeError(f"module {module_name!r} has no attribute {qualname!r}")
        value = getattr(value, part)
    if not callable(value):
        raise TypeError(f"{module_name}:{qualname} is not a class")
    return value  # type: ignore[return-value]


def load_codecs(names: list[str]) -> tuple[dict[str, Codec], dict[str, CodecLoadError]]:
    """Load several codecs; returns those that loaded and the errors of those that did not."""
    loaded: dict[str, Codec] = {}
    errors: dict[str, CodecLoadError] = {}
    for name in names:
        try:
            loaded[name] = load_codec(name)
        except CodecLoadError as e:
            errors[name] = e
    return loaded, errors
