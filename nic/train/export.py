"""Turn a training checkpoint into a model file with its training metadata."""

from __future__ import annotations

import datetime
import platform
from pathlib import Path

import torch

from nic.model_file import save_model_file
from nic.models import MaskedMultiRateHyperprior, MeanScaleHyperprior, model_class
from nic.train.checkpoint import CheckpointError, build_network, damaged, load_checkpoint


def _baselines(net: MaskedMultiRateHyperprior) -> dict:
    """The separate single-rate models trained alongside a masked one: how many, how large."""
    single = model_class(net.config)(net.config.gain_model(net.config.lambdas[:1]))
    return {
        "models": net.num_rate_points,
        "parameters_each": sum(p.numel() for p in single.parameters()),
        "comparison": "benchmarks/masked_vs_separate.py on the training checkpoint",
    }


def _training(ckpt: dict, net: MeanScaleHyperprior | MaskedMultiRateHyperprior) -> dict:
    """The training metadata a model file records, from its checkpoint."""
    train = ckpt["train_config"]
    return {
        "data": dict(ckpt["data"]),
        "steps": ckpt["step"],
        "batch": train["batch"],
        "patch": train["patch"],
        "lambdas": list(train["model"]["lambdas"]),
        "distortion": train["model"]["distortion"],
        "lr": train["lr"],
        "rate_balance": train.get("rate_balance", "none"),  # checkpoints before it: none
        **(
            {"schedule": train["schedule"], "init": train["init"]}
            if train["model"].get("mask_block")
            else {}
        ),
        **({"baselines": _baselines(net)} if train.get("baselines") else {}),
        "hardware": ckpt["hardware"],
        "wall_time_s": round(ckpt["wall_time_s"], 1),
    }


def export_checkpoint(
    checkpoint: str | Path,
    output: str | Path,
    name: str,
    weight_dtype: torch.dtype = torch.float32,
    data_description: str | None = None,
) -> str:
    """Write the model file for `checkpoint`; returns its sha256.

    `data_description` says in words what the data folders held (e.g. how they were packed),
    since the recorded paths mean nothing on another machine.

    Raises CheckpointError (a ValueError) when `checkpoint` is missing, damaged, not a training
    checkpoint or holds anything but tensors and plain values; nothing is written then.
    """
    ckpt = load_checkpoint(checkpoint)
    net = build_network(ckpt["model_config"], ckpt["model"], checkpoint)
    if not all(bool(torch.isfinite(v).all()) for v in net.state_dict().values()):
        raise CheckpointError(f"{checkpoint}: weights that are not finite (training diverged)")
    try:
        training = _training(ckpt, net)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise damaged(checkpoint, e) from None
    if data_description:
        training["data"]["description"] = data_description
    metadata = {
        "training": training,
        "exported": {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "torch": str(torch.__version__),
            "python": platform.python_version(),
            "weight_dtype": str(weight_dtype).removeprefix("torch."),
        },
    }
    return save_model_file(output, name, net, metadata, weight_dtype)
