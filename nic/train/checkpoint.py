"""Training checkpoints: a torch.save'd dict of tensors and plain values (numbers, strings, lists,
tuples, dicts), read back with weights_only=True so that reading one runs no pickled code.

A file that holds anything else (a class instance, a function) is refused, as is a damaged file
or one without a checkpoint's entries; nothing is written over it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from nic.files import atomic_output, torch_load_reason
from nic.models import HyperpriorConfig, MaskedMultiRateHyperprior, MeanScaleHyperprior, build_model

ENTRIES: dict[str, type | tuple[type, ...]] = {
    "model_config": dict, "train_config": dict, "model": dict, "sampler_rng": dict,
    "torch_rng": torch.Tensor, "step": int, "wall_time_s": (int, float), "hardware": list,
    "data": dict,
}  # fmt: skip
"""What every checkpoint holds, and of which type; the optimizer state, baselines and input
scales may be absent (a slim copy drops the optimizer state and baselines)."""


class CheckpointError(ValueError):
    """A training checkpoint that is missing, damaged, not a checkpoint, or holds anything but
    tensors and plain values."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write `state` to `path` through a temporary file, so that a kill leaves the old one."""
    with atomic_output(path) as tmp:
        torch.save(state, tmp)


def damaged(path: str | Path, error: Exception) -> CheckpointError:
    """The error for a checkpoint whose entries cannot be used, in one line."""
    detail = " ".join(str(error).split())[:160]
    return CheckpointError(f"{path}: damaged checkpoint ({type(error).__name__}: {detail})")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a training checkpoint written by `nic train`, running no pickled code.

    Raises CheckpointError when the file is missing, cannot be read (damaged, truncated, not a
    torch file), holds anything but tensors and plain values, or lacks a checkpoint's entries.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found (or not a file): {path}")
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of odd files
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for a damaged or refused file
        raise CheckpointError(
            f"{path}: not a readable training checkpoint ({torch_load_reason(e)})"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a training checkpoint")
    missing = [key for key in ENTRIES if key not in state]
    if missing:
        raise CheckpointError(f"{path}: not a training checkpoint (no {', '.join(missing)})")
    wrong = [key for key, kind in ENTRIES.items() if not isinstance(state[key], kind)]
    if "hardware" not in wrong and not all(
        isinstance(h, dict) and "hardware" in h for h in state["hardware"]
    ):
        wrong.append("hardware")
    if wrong:
        raise CheckpointError(f"{path}: damaged checkpoint (wrong type of {', '.join(wrong)})")
    return state


def _check_weights(net: torch.nn.Module, weights: object, path: str | Path) -> None:
    expected = net.state_dict()
    if not isinstance(weights, dict) or set(weights) != set(expected):
        raise CheckpointError(f"{path}: its weights are not those of its model config")
    for name, tensor in expected.items():
        given = weights[name]
        if not isinstance(given, torch.Tensor) or given.shape != tensor.shape:
            raise CheckpointError(f"{path}: weight {name} does not fit its model config")


def load_weights(net: torch.nn.Module, weights: object, path: str | Path) -> None:
    """Load a checkpoint's `weights` into `net`, floating-point ones converted to float32.

    Raises CheckpointError when they are not tensors of the names and shapes `net` has.
    """
    _check_weights(net, weights, path)
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in weights.items()})


def build_network(
    config: object, weights: object, path: str | Path
) -> MeanScaleHyperprior | MaskedMultiRateHyperprior:
    """The network of a checkpoint's model `config` (a dict, or a HyperpriorConfig) holding its
    `weights`, which are checked against the config before any memory is allocated for it.

    Raises CheckpointError when the config is invalid or the weights do not fit it.
    """
    try:
        if not isinstance(config, HyperpriorConfig):
            config = HyperpriorConfig.from_dict(config)
        with torch.device("meta"):  # shapes only
            _check_weights(build_model(config), weights, path)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise damaged(path, e) from None
    net = build_model(config)
    load_weights(net, weights, path)
    return net
