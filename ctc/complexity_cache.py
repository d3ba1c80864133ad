"""A cache of complexity measurements: each codec version is measured once per machine.

`ctc complexity` and `ctc report` store what ctc.complexity.measure() returns here and reuse it,
so that a report of a finished run does not spend minutes re-measuring codecs it has measured
before. One JSON file per measurement, named after its key:

- the codec (its `name`) and its exact version string (`version()`: library, binary, weights);
- the picture: its name, width x height and the sha256 of its pixels;
- the knob value asked for (None: the codec's default, the middle of its knob's range, which the
  version fixes) and the number of timed runs;
- the machine: CPU model, torch threads (those the measurement runs on: the command's
  --threads, ctc.runner.threads_in_use), GPU names, torch version (times depend on them);
- FORMAT, the layout of a measurement, raised whenever measure() reports something new.

The folder is $CTC_COMPLEXITY_CACHE, else $XDG_CACHE_HOME/nic-ctc/complexity, else
~/.cache/nic-ctc/complexity (next to the datasets of ctc.datasets.data_home). Deleting the folder,
or any file in it, clears the cache. Files are written atomically (a temporary file renamed into
place), and a file that is damaged, too large, not a regular file or holds another key is
ignored: the codec is measured again and the file replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ctc.files import NotASmallFileError, read_small_file

ENV = "CTC_COMPLEXITY_CACHE"
"""The environment variable that names the cache folder."""
FORMAT = 2
"""The layout of a cached measurement; entries of another layout are measured again."""
MAX_BYTES = 1 << 24
"""16 MiB: far more than one measurement takes (tens of kB)."""
SECTIONS = ("picture", "knob", "encoder", "decoder", "gpu", "platform")
"""The parts of a measurement that must be mappings for it to be used."""


def cache_dir() -> Path:
    """$CTC_COMPLEXITY_CACHE, else $XDG_CACHE_HOME/nic-ctc/complexity, else
    ~/.cache/nic-ctc/complexity. The folder need not exist yet."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "nic-ctc" / "complexity"


def machine() -> dict[str, Any]:
    """What a measurement's times depend on here: CPU model, the torch threads it runs on
    (ctc.runner.threads_in_use, as ctc.complexity.measure uses them), GPUs, torch."""
    import torch

    from ctc.complexity import cpu_model, gpu_names
    from ctc.runner import threads_in_use

    return {
        "cpu": cpu_model(),
        "torch_threads": threads_in_use(),
        "gpus": gpu_names(),
        "torch": torch.__version__,
    }


def picture_key(picture: np.ndarray, name: str) -> dict[str, Any]:
    """The key's picture part: name, width, height (pixels), sha256 of the uint8 pixels (16 hex
    digits; two pictures of the same name and size are told apart by their content)."""
    pixels = np.ascontiguousarray(picture)
    digest = hashlib.sha256(pixels.tobytes()).hexdigest()[:16]
    return {"name": name, "width": int(pixels.shape[1]), "height": int(pixels.shape[0]),
            "sha256": digest}  # fmt: skip


def make_key(
    codec: str,
    version: str,
    picture: dict[str, Any],
    knob_value: float | None,
    repeat: int,
    machine_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The key of a measurement (see the module docstring); picture from picture_key()."""
    return {
        "format": FORMAT,
        "codec": codec,
        "version": version,
        "picture": picture,
        "knob_value": None if knob_value is None else float(knob_value),
        "repeat": int(repeat),
        "machine": machine() if machine_info is None else machine_info,
    }


def _file_name(key: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", key["codec"])[:40] or "codec"
    return f"{readable}-{digest}.json"


def problem(result: object) -> str | None:
    """Why `result` is not a measurement of ctc.complexity.measure() (None when it is one):
    the checks a report needs before it reads one."""
    if not isinstance(result, dict):
        return "not a mapping"
    keys = ("codec", "version", "networks", "rate_points", *SECTIONS)
    missing = [key for key in keys if key not in result]
    if missing:
        return f"no {', '.join(missing)}"
    wrong = [key for key in SECTIONS if not isinstance(result[key], dict)]
    if wrong:
        return f"{', '.join(wrong)} not mappings"
    return _unreadable(result)


def _unreadable(result: dict[str, Any]) -> str | None:
    """What stops `ctc complexity`'s text or a report's Complexity sheet from reading `result`
    (a field missing or of the wrong type deeper down), found by writing both; None if nothing."""
    from openpyxl import Workbook

    from ctc.complexity import summary_text
    from ctc.report.complexity_sheet import write_complexity

    try:
        summary_text(result)
        write_complexity(Workbook().active, [result])
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        return f"{type(e).__name__}: {e} in its fields"
    return None


@dataclass
class Entry:
    """A cached measurement: the result, when it was stored and how long measuring took."""

    result: dict[str, Any]
    path: Path
    measured_at: str
    seconds: float | None


class ComplexityCache:
    """Measurements by key in one folder (default cache_dir())."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else cache_dir()

    def path(self, key: dict[str, Any]) -> Path:
        """The file the measurement of `key` is stored in."""
        return self.folder / _file_name(key)

    def get(self, key: dict[str, Any]) -> tuple[Entry | None, str | None]:
        """(the cached measurement of `key`, None) or (None, why there is none usable: 'none
        cached', or what is wrong with the file). Never raises for a file's content."""
        path = self.path(key)
        try:
            stored = json.loads(read_small_file(path, MAX_BYTES).decode("utf-8"))
        except FileNotFoundError:
            return None, "none cached"
        except NotASmallFileError as e:
            return None, str(e)
        except OSError as e:
            return None, f"cannot read {path}: {e.strerror or e}"
        except (ValueError, RecursionError) as e:
            return None, f"{path} is damaged ({type(e).__name__})"
        if not isinstance(stored, dict) or stored.get("key") != key:
            return None, f"{path} holds another measurement"
        result = stored.get("result")
        wrong = problem(result)
        if wrong:
            return None, f"{path} is damaged ({wrong})"
        seconds = stored.get("seconds")
        return Entry(
            result,
            path,
            str(stored.get("measured_at", "")),
            float(seconds) if isinstance(seconds, (int, float)) else None,
        ), None

    def put(self, key: dict[str, Any], result: dict[str, Any], seconds: float | None) -> Path:
        """Store `result` under `key` atomically; returns the file. Raises OSError when the
        folder cannot be written (callers warn and go on: the cache is an optimisation)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(key)
        stored = {
            "key": key,
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": None if seconds is None else round(seconds, 3),
            "result": result,
        }
        text = json.dumps(stored, indent=1, sort_keys=True)
        fd, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=self.folder)
        try:
            with open(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        return path


def measure_or_reuse(
    codec: Any,
    picture: np.ndarray,
    keys: list[dict[str, Any]],
    *,
    cache: ComplexityCache | None,
    remeasure: bool = False,
    knob_value: float | None = None,
    repeat: int = 2,
    picture_name: str = "",
    say: Callable[[str], None] = lambda step: None,
) -> dict[str, Any]:
    """The cached measurement of the first of `keys` found in `cache` (unless `remeasure`),
    else ctc.complexity.measure() of `codec` on `picture`, stored under keys[-1].

    say(step) is called with one line per step (what was reused or ignored, each measuring
    step, where it was cached). Raises ctc.complexity.ComplexityError when measuring fails; a
    cache that cannot be written is said, not raised (the cache is an optimisation).
    """
    from ctc import complexity

    for key in keys if cache is not None and not remeasure else ():
        found, why = cache.get(key)
        if found is not None:
            took = f", measuring took {found.seconds:.1f} s" if found.seconds else ""
            say(f"using the measurement cached {found.measured_at}{took} ({found.path})")
            return found.result
        if why != "none cached":
            say(f"ignoring a cached measurement: {why}")
    height, width = picture.shape[:2]
    say(f"measuring on {width}x{height} with {repeat} timed run{'s' * (repeat != 1)} per operation")
    start = time.perf_counter()
    result = complexity.measure(
        codec, picture, knob_value=knob_value, repeat=repeat, picture_name=picture_name,
        progress=say,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    stored = ""
    if cache is not None:
        try:
            stored = f"; cached in {cache.put(keys[-1], result, seconds)}"
        except OSError as e:
            stored = f"; not cached ({e.strerror or e})"
    say(f"measured in {seconds:.1f} s{stored}")
    return result
