"""Complexity of a codec's encoder and decoder, measured on real encodes and decodes.

In the spirit of the complexity reporting of JVET-M1006 (JVET common test conditions and
evaluation procedures for neural-network-based video coding) and of the JPEG AI common test
conditions' reporting template: parameters, their precision and memory, multiply-accumulate
operations (kMAC per pixel, GMAC per 3840x2160 picture), layer counts, peak memory, run times,
the platform, and the training information stored with the model.

Everything is measured through the codec's own `encode` / `decode` (the Codec protocol), so ctc
needs no knowledge of the codec's package:

- the torch networks are the `torch.nn.Module`s reachable from the codec object's attributes
  after one encode (a codec loading its model lazily has loaded it by then);
- a parameter belongs to the encoder (decoder) when it is an argument of some torch function
  during the encode (decode): a `TorchFunctionMode` records it;
- a parameter is *independent* (owned by one rate point) when its first dimension has one entry
  per value of an integer knob and the coder indexes it (as the gain vectors of a gain-unit
  model, or the masks of a masked variable-rate model); every other used parameter is *shared*;
- *nonzero weights* are the elements of the weights that convolution and linear layers receive
  which are not zero, counted once per parameter they come from (the largest count where one
  parameter feeds several layers, e.g. a float and an integer copy): a masked model's pruned
  blocks are zeros in what its layers receive, so this is what one rate point really uses and
  what a sparse implementation would store;
- MACs are torch's `FlopCounterMode` count during the real encode (decode) divided by 2 (it
  counts a multiply-accumulate as 2 FLOPs): convolutions, transposed convolutions and matrix
  products; element-wise work (GDN's square roots, activations) and entropy coding are not MACs;
- peak memory is the process's peak resident set (VmHWM, reset through /proc/self/clear_refs)
  during the operation, on Linux.

Optional codec attributes it reads when present (a codec needs none of them):
- `on_device(device) -> codec`: the codec with its networks on a torch device, for the GPU
  encode and decode times (measured only where torch sees a CUDA GPU);
- `tile_size`: (width, height) of the patches inference runs on, None for the whole picture;
- `training_lineage() -> [{"model", "training"}, ...]`: the model's training record (its data
  described by name and licence) and its parents', for the total training time.

ctc.complexity_cache stores measurements so that each codec version is measured once.
"""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import re
import statistics
import sys
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

UHD = (3840, 2160)  # width, height of the picture GMAC are given for (JPEG AI, JVET)
_SEARCH_DEPTH = 4


class ComplexityError(RuntimeError):
    """The codec could not be measured (it failed to encode or decode the picture)."""


def test_picture(width: int = UHD[0], height: int = UHD[1]) -> np.ndarray:
    """A photo of the given size: scikit-image's astronaut, mirrored to fill the frame.

    MACs and parameters do not depend on the content; run times depend on it a little (entropy
    coding), so the picture is a natural photo rather than noise.
    """
    from skimage import data

    photo = data.astronaut()
    reps_y, reps_x = -(-height // photo.shape[0]), -(-width // photo.shape[1])
    tile = np.concatenate([photo, photo[::-1]], axis=0)
    tile = np.concatenate([tile, tile[:, ::-1]], axis=1)
    frame = np.tile(tile, (-(-reps_y // 2), -(-reps_x // 2), 1))
    return np.ascontiguousarray(frame[:height, :width])


# --- finding the networks -----------------------------------------------------------------------


def find_networks(obj: object) -> dict[str, Any]:
    """Top-level torch modules reachable through instance attributes, by attribute path.

    Only instance dictionaries (and dataclass fields) are walked, never properties, so that the
    search has no side effects; a module inside another found module is not listed again.
    """
    import torch

    found: dict[str, torch.nn.Module] = {}
    seen: set[int] = set()

    def walk(value: object, path: str, depth: int) -> None:
        if id(value) in seen or depth > _SEARCH_DEPTH:
            return
        seen.add(id(value))
        if isinstance(value, torch.nn.Module):
            found[path] = value
            return
        children = getattr(value, "__dict__", None)
        if isinstance(value, dict):
            children = value
        if not isinstance(children, dict):
            return
        for key, child in children.items():
            if isinstance(key, str) and not isinstance(child, (str, bytes, int, float)):
                walk(child, f"{path}.{key}" if path else key, depth + 1)

    walk(obj, "", 0)
    return found


def find_metadata(obj: object) -> dict[str, Any]:
    """The first dict attribute named `metadata` reachable from the codec (training info)."""
    stack: list[tuple[object, int]] = [(obj, 0)]
    seen: set[int] = set()
    while stack:
        value, depth = stack.pop(0)
        if id(value) in seen or depth > _SEARCH_DEPTH:
            continue
        seen.add(id(value))
        attrs = getattr(value, "__dict__", None)
        if not isinstance(attrs, dict):
            continue
        if isinstance(attrs.get("metadata"), dict):
            return attrs["metadata"]
        stack += [(v, depth + 1) for v in attrs.values() if hasattr(v, "__dict__")]
    return {}


def other_arrays(obj: object, networks: dict[str, Any]) -> tuple[int, int]:
    """(values, bytes) of the numpy arrays held by the codec outside its networks: entropy
    coding tables and the like, which a decoder needs as much as its weights."""
    import torch

    values = size = 0
    stack: list[tuple[object, int]] = [(obj, 0)]
    seen: set[int] = {id(n) for n in networks.values()}
    while stack:
        value, depth = stack.pop()
        if id(value) in seen or depth > _SEARCH_DEPTH or isinstance(value, torch.nn.Module):
            continue
        seen.add(id(value))
        if isinstance(value, np.ndarray):
            values, size = values + value.size, size + value.nbytes
            continue
        if isinstance(value, (list, tuple)):  # e.g. one set of tables per rate point
            stack += [(v, depth + 1) for v in value]
            continue
        attrs = value if isinstance(value, dict) else getattr(value, "__dict__", None)
        if isinstance(attrs, dict):
            stack += [(v, depth + 1) for v in attrs.values()]
    return values, size


# --- tracing parameter use --------------------------------------------------------------------


_CONV_FUNCTIONS = {f"conv{t}{d}d" for t in ("", "_transpose") for d in (1, 2, 3)}


def _parameter_trace(parameters: dict[int, str], ranks: dict[str, int]):
    """A TorchFunctionMode that records which parameters (by id) torch functions receive, and
    which parameters, directly or through tensors computed from them (a masked weight, an
    integer copy), are the weight of a convolution or linear layer, and how many of the
    elements that such a layer receives are nonzero."""
    import torch
    from torch.overrides import TorchFunctionMode

    class ParameterTrace(TorchFunctionMode):
        def __init__(self) -> None:
            super().__init__()
            self.used: set[str] = set()
            self.indexed: set[str] = set()
            self.conv_weights: set[str] = set()
            self.fc_weights: set[str] = set()
            self.nonzero: dict[frozenset[str], int] = {}
            self._derived: dict[int, tuple[weakref.ref, frozenset[str]]] = {}

        def _sources(self, value: object) -> frozenset[str]:
            if not isinstance(value, torch.Tensor):
                return frozenset()
            name = parameters.get(id(value))
            if name is not None:
                return frozenset((name,))
            ref, names = self._derived.get(id(value), (None, frozenset()))
            return names if ref is not None and ref() is value else frozenset()

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            sources: set[str] = set()
            for value in _flat(args, kwargs):
                name = parameters.get(id(value)) if isinstance(value, torch.Tensor) else None
                if name is not None:
                    self.used.add(name)
                    if func is torch.Tensor.__getitem__ and value is args[0]:
                        self.indexed.add(name)
                sources |= self._sources(value)
            output = func(*args, **kwargs)
            kind = getattr(func, "__name__", "")
            if kind in _CONV_FUNCTIONS or kind == "linear":
                weight = args[1] if len(args) > 1 else kwargs.get("weight")
                rank = 3 if kind != "linear" else 2  # a GDN's (C, C) matrix is no conv layer
                names = {n for n in self._sources(weight) if ranks.get(n, 0) >= rank}
                (self.fc_weights if kind == "linear" else self.conv_weights).update(names)
                if names:
                    key = frozenset(names)
                    count = int(torch.count_nonzero(weight))
                    self.nonzero[key] = max(self.nonzero.get(key, 0), count)
            if sources and isinstance(output, torch.Tensor):
                self._derived[id(output)] = (weakref.ref(output), frozenset(sources))
            return output

    return ParameterTrace()


def _flat(args: tuple, kwargs: dict) -> Iterator[object]:
    for value in (*args, *kwargs.values()):
        if isinstance(value, (list, tuple)):
            yield from value
        else:
            yield value


@dataclass
class Trace:
    """What one operation touched and cost."""

    used: set[str] = field(default_factory=set)
    indexed: set[str] = field(default_factory=set)
    conv_weights: set[str] = field(default_factory=set)
    fc_weights: set[str] = field(default_factory=set)
    nonzero_weights: int = 0
    flops: int = 0
    seconds: float = 0.0
    output: Any = None


def trace(
    operation: Callable[[], Any],
    parameters: dict[int, str],
    count: bool = True,
    ranks: dict[str, int] | None = None,
) -> Trace:
    """Run `operation` once, recording the parameters it touches and (count) its FLOPs;
    `ranks` (parameter name -> number of dimensions) lets it tell layers' weights apart."""
    from torch.utils.flop_counter import FlopCounterMode

    tracer = _parameter_trace(parameters, ranks or {})
    counter = FlopCounterMode(display=False) if count else None
    start = time.perf_counter()
    if counter is None:
        with tracer:
            output = operation()
    else:
        with counter, tracer:
            output = operation()
    seconds = time.perf_counter() - start
    flops = counter.get_total_flops() if counter is not None else 0
    return Trace(
        tracer.used,
        tracer.indexed,
        tracer.conv_weights,
        tracer.fc_weights,
        sum(tracer.nonzero.values()),
        int(flops),
        seconds,
        output,
    )


def count_macs(operation: Callable[[], Any]) -> int:
    """Multiply-accumulates of one call, from torch's FlopCounterMode (2 FLOPs per MAC)."""
    return trace(operation, {}, count=True).flops // 2


# --- memory ---------------------------------------------------------------------------------------


def _proc_status(field_name: str) -> float | None:
    """A memory field of /proc/self/status in MB (10^6 bytes), None where there is none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        return None
    return None


def peak_memory(operation: Callable[[], Any]) -> tuple[float | None, float | None, Any]:
    """(peak resident MB during the call, resident MB before it, the call's result).

    Linux only: the kernel's peak (VmHWM) is reset through /proc/self/clear_refs before the call,
    so the peak is that of this call, though it includes what the process held already.
    """
    before = _proc_status("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")
        resettable = True
    except OSError:
        resettable = False
    result = operation()
    peak = _proc_status("VmHWM") if resettable else None
    return peak, before, result


# --- platform -------------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else what platform reports)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _physical_cores() -> int | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    cores, physical = set(), None
    for line in text.splitlines():
        if line.startswith("physical id"):
            physical = line.split(":")[1].strip()
        elif line.startswith("core id"):
            cores.add((physical, line.split(":")[1].strip()))
    return len(cores) or None


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def gpu_names() -> list[str]:
    """The names of the CUDA devices torch sees here (empty without a GPU or a CUDA build)."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def platform_info() -> dict[str, Any]:
    """CPU, cores, threads, GPU and framework versions of this machine."""
    import torch

    gpus = gpu_names()
    return {
        "cpu": cpu_model(),
        "physical_cores": _physical_cores(),
        "logical_cpus": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "gpus": gpus,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "numpy": np.__version__,
        "nic-ctc": _package_version("nic-ctc"),
    }


# --- the measurement ------------------------------------------------------------------------------


Progress = Callable[[str], None]
"""Told each step of a measurement as it starts, in words ('timing encode 1/2')."""


def _rate_points(codec: Any) -> list[float] | None:
    """The knob values of the codec's trained rate points (its optional `rate_points`), else
    every value of an integer knob, else None."""
    declared = getattr(codec, "rate_points", None)
    if declared is not None:
        return [float(v) for v in declared]
    knob = codec.knob
    if knob.kind != "integer":
        return None
    return [float(v) for v in range(int(knob.low), int(knob.high) + 1)]


def release_memory() -> None:
    """Free what the last step left: unreachable objects (gc), then the C heap's free pages
    (glibc's malloc_trim), which the allocator otherwise keeps after a large encode, so that
    the resident size before the next step, and so its peak, is not inflated by them."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass


def _timed(
    operation: Callable[[], Any], repeat: int, progress: Progress, label: str
) -> tuple[list[float], float | None, float | None]:
    """(seconds of each of `repeat` calls, peak resident MB during the first, resident MB
    before it); every output is dropped before the next call."""
    times: list[float] = []
    peak = before = None
    for run in range(repeat):
        progress(f"{label} {run + 1}/{repeat}")
        release_memory()
        if run == 0:
            peak, before, seconds = peak_memory(lambda: _seconds(operation))
        else:
            seconds = _seconds(operation)
        times.append(seconds)
    return times, peak, before


def _seconds(operation: Callable[[], Any]) -> float:
    start = time.perf_counter()
    operation()  # the output is dropped here, not held through the next call
    return time.perf_counter() - start


def _device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return cpu_model() if device == "cpu" else device


def _accelerator(
    codec: Any,
    picture: np.ndarray,
    knob_value: float,
    repeat: int,
    device: str | None,
    progress: Progress,
) -> dict[str, Any]:
    """Encode and decode times (and, on CUDA, peak device memory) of the codec on `device`
    (default: "cuda" where a GPU is present), through its optional `on_device(device)`, which
    returns a codec that runs its networks there; a note says why nothing was measured."""
    import torch

    gpus = gpu_names()
    result: dict[str, Any] = {
        "present": bool(gpus), "names": gpus, "device": None, "device_name": None,
        "encode_seconds": [], "decode_seconds": [], "encode_seconds_median": None,
        "decode_seconds_median": None, "encode_peak_memory_mb": None,
        "decode_peak_memory_mb": None, "seconds": None,
    }  # fmt: skip
    if device is None and not gpus:
        return result | {"note": "not measured: no GPU on this machine"}
    device = device or "cuda"
    on_device = getattr(codec, "on_device", None)
    if not callable(on_device):
        where = f"a GPU is present ({', '.join(gpus)}), but" if gpus else "no GPU here, and"
        return result | {
            "note": f"not measured: {where} the codec runs on the CPU only (it offers no "
            "on_device(device))"
        }
    cuda = device.startswith("cuda")

    def run(operation: Callable[[], Any], label: str) -> tuple[list[float], float | None]:
        times: list[float] = []
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        for n in range(repeat):
            progress(f"{label} on {device} {n + 1}/{repeat}")
            start = time.perf_counter()
            operation()
            if cuda:
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
        peak = torch.cuda.max_memory_allocated(device) / 1e6 if cuda else None
        return times, peak

    moved = None
    try:
        moved = on_device(device)
        progress(f"warming up on {device} (one encode and decode)")
        data = moved.encode(picture, knob_value)  # kernels are chosen and loaded on first use
        moved.decode(data)
        enc, enc_peak = run(lambda: moved.encode(picture, knob_value), "timing encode")
        dec, dec_peak = run(lambda: moved.decode(data), "timing decode")
    except Exception as e:  # the codec's own failure there: say so, keep the CPU figures
        message = " ".join(str(e).split())[:300]
        return result | {"device": device, "note": f"not measured on {device}: {message}"}
    finally:
        moved = None  # the device's copy of the networks goes before the next step
        release_memory()
        if cuda:
            torch.cuda.empty_cache()
    name = _device_name(device)
    return result | {
        "device": device,
        "device_name": name,
        "encode_seconds": enc,
        "decode_seconds": dec,
        "encode_seconds_median": statistics.median(enc),
        "decode_seconds_median": statistics.median(dec),
        "encode_peak_memory_mb": enc_peak,
        "decode_peak_memory_mb": dec_peak,
        "note": f"on {name} ({device}), median of {repeat} timed run{'s' * (repeat != 1)} "
        "after a warm-up"
        + (", peak device memory from torch.cuda.max_memory_allocated" if cuda else ""),
    }


def _tiling(codec: Any) -> dict[str, Any]:
    """The codec's optional `tile_size`: (width, height) of the patches its inference runs on,
    None for the whole picture in one pass."""
    if not hasattr(codec, "tile_size"):
        return {"declared": False, "tile_size": None}
    size = codec.tile_size
    if size is None:
        return {"declared": True, "tile_size": None}
    width, height = (int(v) for v in size)
    return {"declared": True, "tile_size": [width, height]}


_PATH = re.compile(r"(?<![\w.:/\\])(?:~|\.{1,2})?/[^\s,;:()\[\]]*|(?<![\w\\])[A-Za-z]:\\[^\s,;:]*")
"""A file-system path in text: /abs/path, ~/p, ./p, ../p, C:\\p (not a/b, N=128/M=192, 1/256)."""
PATH_KEYS = frozenset({"path", "paths", "dir", "dirs", "folder", "folders"})
"""Keys of training metadata whose values are paths of the training machine: left out."""


def without_paths(value: Any) -> Any:
    """`value` (JSON-like) with the machine's paths taken out: keys in PATH_KEYS dropped, and
    path-like words in text replaced by '(path withheld)', so that no sheet shows where a
    model was trained (a home folder, a user name)."""
    if isinstance(value, dict):
        return {k: without_paths(v) for k, v in value.items() if k not in PATH_KEYS}
    if isinstance(value, list):
        return [without_paths(v) for v in value]
    if isinstance(value, str):
        return _PATH.sub("(path withheld)", value)
    return value


def training_lineage(chain: list[dict[str, Any]], followed: bool) -> dict[str, Any]:
    """The training time of a model and of every model it was initialised from.

    chain: the model, then each parent, as {"model": name, "training": its training record,
    or None where the parent is not available}; followed: whether the parents were followed
    (a codec's `training_lineage()`), else the chain is the model's own record, whose `init`
    cannot be followed. Returns {"models": [{model, steps, wall_time_s, hardware, init}],
    "total_wall_time_s" (seconds, the sum of the recorded wall times; None for an empty
    chain), "complete", "note"}; the note names what is not recorded.
    """
    models, missing = [], []
    for link in chain:
        record = link.get("training")
        name = str(link.get("model"))
        if not isinstance(record, dict) or not record:
            missing.append(f"{name}'s training is not recorded here")
            models.append({"model": name, "steps": None, "wall_time_s": None, "hardware": None,
                           "init": None})  # fmt: skip
            continue
        wall = record.get("wall_time_s")
        hardware = record.get("hardware")
        if isinstance(hardware, list):
            hardware = ", ".join(
                str(h.get("hardware", h)) if isinstance(h, dict) else str(h) for h in hardware
            )
        if not isinstance(wall, (int, float)) or isinstance(wall, bool):
            missing.append(f"{name} records no wall time")
            wall = None
        init = record.get("init")
        models.append({"model": name, "steps": record.get("steps"), "wall_time_s": wall,
                       "hardware": hardware, "init": init})  # fmt: skip
    if models and models[-1]["init"] and not followed:
        missing.append(f"its parent {models[-1]['init']} (the codec offers no "
                       "training_lineage() to follow it)")  # fmt: skip
    recorded = [m for m in models if m["wall_time_s"] is not None]
    if recorded:
        parts = " + ".join(f"{m['model']} ({m['wall_time_s']:g} s)" for m in recorded)
        note = f"sum of the recorded wall times: {parts}; a resumed run's time includes its " \
            "earlier chunks"  # fmt: skip
    else:
        note = "no training time recorded"
    if models and models[-1]["init"] is None and models[-1]["wall_time_s"] is not None:
        note += f"; the lineage starts at {models[-1]['model']}, which records no parent"
    if missing:
        note += "; not counted: " + "; ".join(missing)
    return without_paths(
        {
            "models": models,
            "total_wall_time_s": sum(m["wall_time_s"] for m in recorded) if models else None,
            "complete": bool(models) and not missing,
            "note": note,
        }
    )


def measure(
    codec: Any,
    picture: np.ndarray | None = None,
    *,
    knob_value: float | None = None,
    repeat: int = 2,
    picture_name: str | None = None,
    progress: Progress | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Measure a codec's encoder and decoder; returns a JSON-ready dict (see docs/reporting.md).

    picture: uint8 (H, W, 3), default test_picture() at 3840x2160; picture_name says what it is
    (default: the astronaut test picture, or 'a W×H picture'). knob_value: the rate point (or
    quality) the picture is coded at, default the middle of the knob's range. repeat: timed
    runs after the counted one (their median is reported; the first also gives the peak
    memory). progress: told each step as it starts. device: the torch device of the
    accelerator times (default "cuda" where a GPU is present; they need the codec's optional
    `on_device`). Raises ComplexityError when the codec fails to code a small crop.

    Memory: the counted (traced) encode and decode, then each timed call, run one after the
    other, each output dropped and the heap trimmed in between, so the process peaks at what
    the codec's largest single call needs (for a whole-picture learned codec, its activations:
    several GB at 3840x2160), not at a sum.

    Threads: torch runs on ctc.runner.threads_in_use() (a command's --threads, else 1: CTC times
    are single-threaded), which the platform section and the cache key record; torch's own
    setting is restored after.
    """
    from ctc.runner import threads_in_use, threads_used

    with threads_used(threads_in_use()):
        return _measure(
            codec, picture, knob_value=knob_value, repeat=repeat, picture_name=picture_name,
            progress=progress, device=device,
        )  # fmt: skip


def _measure(
    codec: Any,
    picture: np.ndarray | None,
    *,
    knob_value: float | None,
    repeat: int,
    picture_name: str | None,
    progress: Progress | None,
    device: str | None,
) -> dict[str, Any]:
    """measure() on the threads it set."""
    import torch

    say: Progress = progress or (lambda step: None)
    if picture is None:
        picture = test_picture()
        picture_name = (
            picture_name or f"astronaut mirrored to {picture.shape[1]}x{picture.shape[0]}"
        )
    height, width = picture.shape[:2]
    picture_name = picture_name or f"a {width}×{height} picture"
    knob = codec.knob
    if knob_value is None:
        knob_value = (knob.low + knob.high) / 2
        knob_value = float(round(knob_value)) if knob.kind == "integer" else knob_value

    small = picture[: min(64, height), : min(64, width)]
    values = _rate_points(codec)
    crop = f"{small.shape[1]}x{small.shape[0]}"
    say(f"loading: coding a {crop} crop at {1 + len(values or [])} knob values")
    try:
        for value in [knob_value, *(values or [])]:  # loads lazily loaded models and parts
            codec.decode(codec.encode(small, value))
    except (Exception, SystemExit) as e:
        what = f"called sys.exit({e.code!r})" if isinstance(e, SystemExit) else str(e)
        raise ComplexityError(f"{codec.name}: encoding a test picture failed: {what}") from e
    networks = find_networks(codec)
    named = {
        f"{prefix}.{name}": p
        for prefix, net in networks.items()
        for name, p in net.named_parameters()
    }
    ids = {id(p): name for name, p in named.items()}

    ranks = {name: p.dim() for name, p in named.items()}
    release_memory()
    say(f"counting MACs and parameters: encode of {width}x{height}")
    encoded = trace(lambda: codec.encode(picture, knob_value), ids, ranks=ranks)
    data, encoded.output = encoded.output, None
    release_memory()
    say(f"counting MACs and parameters: decode of {width}x{height}")
    decoded = trace(lambda: codec.decode(data), ids, ranks=ranks)
    decoded.output = None
    enc_times, enc_peak, enc_before = _timed(
        lambda: codec.encode(picture, knob_value), repeat, say, "timing encode"
    )
    dec_times, dec_peak, dec_before = _timed(
        lambda: codec.decode(data), repeat, say, "timing decode"
    )
    release_memory()

    per_point: list[dict[str, Any]] = []
    independent: set[str] = set()
    tables: set[str] = set()  # independent tensors with one row per rate point (gain tables)
    enc_used, dec_used = set(encoded.used), set(decoded.used)
    if values is not None and networks:
        count = len(values)
        say(f"parameters of each of {count} rate points ({crop} crop)")
        for k, value in enumerate(values):
            e = trace(lambda v=value: codec.encode(small, v), ids, count=False, ranks=ranks)
            d = trace(lambda e=e: codec.decode(e.output), ids, count=False, ranks=ranks)
            indexed = {n for n in (e.indexed | d.indexed) if named[n].shape[:1] == (count,)}
            independent |= indexed
            tables |= indexed
            enc_used |= e.used
            dec_used |= d.used
            per_point.append(
                {
                    "index": k,
                    "knob_value": value,
                    "encoder_nonzero_weights": e.nonzero_weights,
                    "decoder_nonzero_weights": d.nonzero_weights,
                    "_enc": e.used,
                    "_dec": d.used,
                }
            )
        # A tensor that only one rate point uses is that rate point's own (a masked model's
        # per-rate-point layers), like a row that each rate point indexes (a gain table).
        uses = Counter(n for p in per_point for n in p["_enc"] | p["_dec"])
        if count > 1:
            independent |= {n for n, c in uses.items() if c == 1}

    def counts(names: set[str], rate_points: int | None, one_point: bool = False) -> dict[str, Any]:
        """Counts over `names`: those of every rate point, or (one_point) of a single one,
        which uses one row of each table but the whole of its own tensors."""
        shared = sum(named[n].numel() for n in names - independent)
        indep = sum(named[n].numel() for n in names & independent)
        if not rate_points:
            per = 0
        elif one_point:
            own = names & independent - tables
            own_count = sum(named[n].numel() for n in own)
            per = own_count + (indep - own_count) // rate_points
        else:
            per = indep // rate_points
        dtypes = sorted({str(named[n].dtype).removeprefix("torch.") for n in names})
        return {
            "total": shared + indep,
            "shared": shared,
            "independent_per_rate_point": per,
            "used_per_rate_point": shared + per,
            "precision": dtypes,
            "memory_mb": sum(named[n].numel() * named[n].element_size() for n in names) / 1e6,
        }

    rate_points = len(values) if values is not None and independent else None
    pixels = width * height

    def side(t: Trace, used: set[str], peak, before, times) -> dict[str, Any]:
        conv, fc = len(t.conv_weights), len(t.fc_weights)
        macs = t.flops // 2
        return {
            "parameters": counts(used, rate_points),
            "macs": macs,
            "kmac_per_pixel": macs / pixels / 1e3,
            "gmac_per_picture": macs / 1e9,
            "conv_layers": conv,
            "fc_layers": fc,
            "nonzero_weights": t.nonzero_weights,
            "peak_memory_mb": peak,
            "memory_before_mb": before,
            "cpu_seconds_median": statistics.median(times) if times else t.seconds,
            "cpu_seconds": times,
        }

    rows = []
    for point in per_point:
        e_names, d_names = point.pop("_enc"), point.pop("_dec")
        e_counts = counts(e_names, rate_points, one_point=True)
        d_counts = counts(d_names, rate_points, one_point=True)
        point.update(
            encoder_shared=e_counts["shared"],
            encoder_independent=e_counts["independent_per_rate_point"],
            encoder_used=e_counts["used_per_rate_point"],
            decoder_shared=d_counts["shared"],
            decoder_independent=d_counts["independent_per_rate_point"],
            decoder_used=d_counts["used_per_rate_point"],
        )
        rows.append(point)

    all_params = sum(p.numel() for p in named.values())
    unused = set(named) - enc_used - dec_used
    table_values, table_bytes = other_arrays(codec, networks)
    accelerator = _accelerator(codec, picture, knob_value, repeat, device, say)
    metadata = find_metadata(codec)
    training = without_paths(metadata.get("training", {}))
    offered = getattr(codec, "training_lineage", None)
    chain = list(offered()) if callable(offered) else None
    if chain and isinstance(chain[0].get("training"), dict):  # the codec's account of its data
        training = without_paths(chain[0]["training"])
    if chain is None:
        chain = [{"model": "this model", "training": training}] if training else []
    lineage = training_lineage(chain, followed=callable(offered))
    return {
        "codec": codec.name,
        "version": codec.version(),
        "picture": {"name": picture_name, "width": width, "height": height},
        "knob": {"name": knob.name, "value": knob_value, "kind": knob.kind},
        "bytes": len(data),
        "networks": sorted(networks),
        "network_parameters": all_params,
        "unused_parameters": sum(named[n].numel() for n in unused),
        "unused_parameter_names": sorted(unused),
        "independent_parameter_names": sorted(independent),
        "rate_points": rows,
        "other_arrays": {"values": table_values, "memory_mb": table_bytes / 1e6},
        "encoder": side(encoded, enc_used, enc_peak, enc_before, enc_times),
        "decoder": side(decoded, dec_used, dec_peak, dec_before, dec_times),
        "tiling": _tiling(codec),
        "gpu": accelerator,
        "platform": platform_info(),
        "training": training,
        "training_lineage": lineage,
        "model_metadata": without_paths({k: v for k, v in metadata.items() if k != "training"}),
        "torch_interop_threads": torch.get_num_interop_threads(),
    }


# --- as text ---------------------------------------------------------------------------------


def summary_text(result: dict[str, Any]) -> str:
    """A measurement of ctc.complexity.measure() as plain text, encoder and decoder columns."""
    enc, dec = result["encoder"], result["decoder"]
    pe, pd = enc["parameters"], dec["parameters"]
    pic = result["picture"]
    gpu = result.get("gpu") or {}
    uhd = UHD[0] * UHD[1] / 1e6  # kMAC/pixel -> GMAC per picture
    rows = [
        ("parameters, total", pe["total"], pd["total"]),
        ("shared", pe["shared"], pd["shared"]),
        ("independent per rate point", pe["independent_per_rate_point"],
         pd["independent_per_rate_point"]),
        ("used per rate point", pe["used_per_rate_point"], pd["used_per_rate_point"]),
        ("nonzero layer weights", enc["nonzero_weights"], dec["nonzero_weights"]),
        *[(f"  at rate point {p['index']}", p["encoder_nonzero_weights"],
           p["decoder_nonzero_weights"]) for p in result["rate_points"]],
        ("parameter memory (MB)", f"{pe['memory_mb']:.2f}", f"{pd['memory_mb']:.2f}"),
        ("kMAC/pixel", f"{enc['kmac_per_pixel']:.3f}", f"{dec['kmac_per_pixel']:.3f}"),
        (f"GMAC per {pic['width']}x{pic['height']}", f"{enc['gmac_per_picture']:.3f}",
         f"{dec['gmac_per_picture']:.3f}"),
        *([(f"GMAC per {UHD[0]}x{UHD[1]} (derived)", f"{enc['kmac_per_pixel'] * uhd:.3f}",
            f"{dec['kmac_per_pixel'] * uhd:.3f}")]
          if (pic["width"], pic["height"]) != UHD else []),
        ("conv / fc layers", f"{enc['conv_layers']} / {enc['fc_layers']}",
         f"{dec['conv_layers']} / {dec['fc_layers']}"),
        ("peak memory, process (MB)", _mb(enc["peak_memory_mb"]), _mb(dec["peak_memory_mb"])),
        ("CPU time, median (s)", f"{enc['cpu_seconds_median']:.4f}",
         f"{dec['cpu_seconds_median']:.4f}"),
        *([("GPU time, median (s)", f"{gpu['encode_seconds_median']:.4f}",
            f"{gpu['decode_seconds_median']:.4f}")]
          if gpu.get("encode_seconds_median") is not None else []),
    ]  # fmt: skip
    lines = [f"{result['codec']}: {result['version']}", f"picture: {pic['name']}"]
    lines += [f"{'':28} {'encoder':>14} {'decoder':>14}"]
    lines += [f"{label:28} {e!s:>14} {d!s:>14}" for label, e, d in rows]
    lines.append(f"GPU: {gpu.get('note', 'not measured')}")
    tiling = result.get("tiling") or {}
    if tiling.get("declared"):
        tile = tiling.get("tile_size")
        lines.append(f"inference tile: {f'{tile[0]}x{tile[1]}' if tile else 'the whole picture'}")
    lineage = result.get("training_lineage") or {}
    if lineage.get("total_wall_time_s") is not None:
        hours = lineage["total_wall_time_s"] / 3600
        lines.append(f"training time, whole lineage: {hours:.2f} h ({lineage['note']})")
    plat = result["platform"]
    lines.append(
        f"platform: {plat['cpu']}, {plat['logical_cpus']} CPUs, {plat['torch_threads']} torch "
        f"threads, torch {plat['torch']}, python {plat['python']}"
    )
    return "\n".join(lines)


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"
