"""Model files: weights, architecture, integer CDF tables and training metadata in one file.

A model file is a torch.save'd dict of tensors and plain values, loaded with weights_only=True
(no pickled code runs). The CDF tables are computed once at export and read back as integers, so
encoder and decoder never rebuild them from floats.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from nic.entropy import CdfTables, build_gaussian_tables, scale_table
from nic.models import HyperpriorConfig, IntegerHyperSynthesis, MeanScaleHyperprior

FORMAT = "nic-model"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file that is missing, damaged or not of this format."""


@dataclass
class CodecModel:
    """A network ready for coding, with its tables and identity."""

    name: str
    sha256: str
    net: MeanScaleHyperprior
    z_tables: CdfTables
    y_tables: CdfTables
    scale_table: np.ndarray
    metadata: dict

    @property
    def device(self) -> torch.device:
        """Where the network runs (move it with `model.net.to(device)`)."""
        return self.net.log_gain.device

    @cached_property
    def hyper_synthesis(self) -> IntegerHyperSynthesis:
        """The integer entropy-parameter path that encoder and decoder both use."""
        return IntegerHyperSynthesis(self.net.h_s, self.scale_table)

    @property
    def weights_hash(self) -> bytes:
        """The first 8 bytes of the file's sha256, as carried in bitstream headers."""
        return bytes.fromhex(self.sha256[:16])

    @property
    def num_rate_points(self) -> int:
        return self.net.num_rate_points


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_model_file(
    path: str | Path,
    name: str,
    net: MeanScaleHyperprior,
    metadata: dict,
    weight_dtype: torch.dtype = torch.float32,
) -> str:
    """Write a model file (building its CDF tables) and return its sha256."""
    net = net.cpu().eval()
    scales = scale_table()
    tables = {
        **net.hyper_prior.build_tables().to_state("z"),
        **build_gaussian_tables(scales).to_state("y"),
    }
    weights = {
        k: (v.to(weight_dtype) if v.is_floating_point() else v) for k, v in net.state_dict().items()
    }
    torch.save(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": name,
            "config": net.config.to_dict(),
            "weights": weights,
            "tables": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tables.items()},
            "scale_table": torch.from_numpy(scales),
            "metadata": metadata,
        },
        path,
    )
    return sha256_file(path)


def load_model_file(path: str | Path, expected_sha256: str | None = None) -> CodecModel:
    """Load a model file, verifying its sha256 when one is expected."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    digest = sha256_file(path)
    if expected_sha256 and digest != expected_sha256:
        raise ModelFileError(
            f"{path}: sha256 {digest[:16]}... does not match the registered "
            f"{expected_sha256[:16]}... (damaged or replaced file)"
        )
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged file
        raise ModelFileError(f"{path}: not a readable model file ({e})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a {FORMAT} file")
    if raw.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: model file version {raw.get('format_version')} unsupported")
    net = MeanScaleHyperprior(HyperpriorConfig.from_dict(raw["config"]))
    net.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in raw["weights"].items()}
    )
    net.eval()
    tables = {k: v.numpy() for k, v in raw["tables"].items()}
    try:
        z_tables = CdfTables.from_state(tables, "z")
        y_tables = CdfTables.from_state(tables, "y")
    except (KeyError, ValueError) as e:
        raise ModelFileError(f"{path}: bad CDF tables ({e})") from None
    if len(z_tables) != net.config.N:
        raise ModelFileError(f"{path}: {len(z_tables)} hyper-latent tables for N={net.config.N}")
    scales = raw["scale_table"].numpy()
    if len(y_tables) != scales.size:
        raise ModelFileError(f"{path}: {len(y_tables)} latent tables for {scales.size} scales")
    return CodecModel(raw["name"], digest, net, z_tables, y_tables, scales, raw["metadata"])
