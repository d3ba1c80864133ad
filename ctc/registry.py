"""Codec discovery through the `ctc.codecs` entry-point group (ctc imports no codec package).

A distribution registers a codec class in its pyproject.toml:

    [project.entry-points."ctc.codecs"]
    jpeg = "anchors.jpeg:JpegCodec"

Loading a codec imports its module, instantiates the class without arguments and checks that
the object has what the Codec interface needs. Any failure becomes a CodecLoadError that names
that codec only, so one broken codec does not stop the others.
"""

from __future__ import annotations

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


def load_codec(name: str) -> Codec:
    """Import, construct and check the codec registered as `name`."""
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        known = ", ".join(registered()) or "none"
        raise CodecLoadError(name, f"not registered in entry-point group {GROUP!r} (have: {known})")
    try:
        codec = matches[0].load()()
        return _check(name, codec)
    except CodecLoadError:
        raise
    except Exception as e:  # a codec's own failure, whatever it is, is reported for it alone
        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CodecLoadError(name, f"failed to load: {type(e).__name__}: {message}") from e


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
