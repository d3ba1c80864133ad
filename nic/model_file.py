"""Model files: weights, architecture, integer CDF tables and training metadata in one file.

A model file is a torch.save'd dict of tensors and plain values, loaded with weights_only=True
(no pickled code runs). The CDF tables are computed once at export and read back as integers, so
encoder and decoder never rebuild them from floats.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from nic.bitstream import GAIN_STEPS, HASH_BYTES, check_model_id
from nic.entropy import CdfTables, build_gaussian_tables, scale_table
from nic.files import FileError, read_file, torch_load_reason
from nic.models import (
    HyperpriorConfig,
    IntegerElic,
    IntegerHyperSynthesis,
    MaskedMultiRateHyperprior,
    MeanScaleHyperprior,
    build_model,
    integer_entropy_path,
)
from nic.models.masked import layer_key, pack_masks, unpack_masks

FORMAT = "nic-model"
FORMAT_VERSION = 1


MAX_MODEL_FILE_BYTES = 1 << 30
"""1 GiB: the largest model file read (the zoo's are about 16 MiB)."""
MAX_CHANNELS = 1024
"""The widest N / M a model file or training config may describe (the zoo models have 128 and
192), so that a crafted one cannot make nic allocate much."""
MAX_RATE_POINTS = 64


class ModelFileError(ValueError):
    """A model file that is missing, damaged or not of this format."""


class ModelHashError(ModelFileError):
    """A model file whose weights are not the ones a bitstream names."""


OWN_GAIN = 1.0
"""The position of a masked model's rate point in its own network's gain table
(MaskedMultiRateHyperprior.rate_point_network: 0 one step coarser, 2 one step finer)."""
NETWORK_CROSSOVER = 0.5
"""A masked model codes a rate position k + a (0 <= a < 1) with network k below this fraction
and with network k + 1 at a coarser gain from it: a network's own gain beats its neighbour's
stretched towards it (measured: docs/codec.md, "Rate positions between rate points")."""


@dataclass(frozen=True)
class RateNetwork:
    """What codes one gain code: which network (a masked model's rate point; 0 for a gain
    model), that gain-model network, the rate position inside its own gain table, its
    hyper-latent tables and its integer entropy-parameter path."""

    index: int
    net: MeanScaleHyperprior
    position: float
    z_tables: CdfTables
    entropy_path: IntegerHyperSynthesis | IntegerElic


@dataclass
class CodecModel:
    """A network ready for coding, with its tables and identity.

    A gain model is one network for every rate position in [0, K - 1]. A masked model holds K
    networks; rate point k's covers the positions [k, k + 1) (docs/codec.md).
    """

    name: str
    sha256: str
    net: MeanScaleHyperprior | MaskedMultiRateHyperprior
    z_tables: list[CdfTables]  # the hyper-latent's tables: one set per network
    y_tables: CdfTables
    scale_table: np.ndarray
    metadata: dict
    _rate_points: dict = field(default_factory=dict, init=False, repr=False)

    @property
    def device(self) -> torch.device:
        """Where the network runs (move it with `model.net.to(device)`)."""
        return self.net.device

    @property
    def masked(self) -> bool:
        return isinstance(self.net, MaskedMultiRateHyperprior)

    @cached_property
    def entropy_path(self) -> IntegerHyperSynthesis | IntegerElic:
        """A gain model's integer entropy-parameter path, which encoder and decoder both use."""
        return integer_entropy_path(self.net, self.scale_table)

    @property
    def weights_hash(self) -> bytes:
        """The first HASH_BYTES bytes of the file's sha256, as carried in bitstream headers."""
        return bytes.fromhex(self.sha256[: 2 * HASH_BYTES])

    @property
    def num_rate_points(self) -> int:
        return self.net.num_rate_points

    @property
    def max_rate_position(self) -> float:
        """The highest rate position: K - 1, or just below K for a masked model."""
        k = self.num_rate_points
        return k - 1 / GAIN_STEPS if self.masked else k - 1

    def default_network(self, code: int) -> int:
        """The network that codes gain code `code` unless the caller picks one: the rate point
        below it, or the one above from NETWORK_CROSSOVER on; 0 for a gain model."""
        if not self.masked:
            return 0
        k, a = divmod(code, GAIN_STEPS)
        return min(k + (a >= NETWORK_CROSSOVER * GAIN_STEPS), self.num_rate_points - 1)

    def networks_for(self, code: int) -> list[int]:
        """Every network that can code gain code `code`: a masked model's rate points at most
        one rate point away; 0 for a gain model."""
        if not self.masked:
            return [0]
        near = range(max(code // GAIN_STEPS - 1, 0), self.num_rate_points)
        return [n for n in near if abs(code - n * GAIN_STEPS) <= GAIN_STEPS]

    def rate_network(self, code: int, network: int | None = None) -> RateNetwork:
        """The network (default: default_network) and position that code gain code `code`
        (rate position code / 256). Raises ValueError for a network that cannot code it."""
        network = self.default_network(code) if network is None else network
        if network not in self.networks_for(code):
            raise ValueError(
                f"network {network} cannot code rate position {code / GAIN_STEPS:g} of "
                f"{self.name} (it can: {self.networks_for(code)})"
            )
        if not self.masked:
            return RateNetwork(0, self.net, code / GAIN_STEPS, self.z_tables[0], self.entropy_path)
        if network not in self._rate_points:
            with torch.inference_mode(False):  # usable for gradients even if built while coding
                net = self.net.rate_point_network(network)
            self._rate_points[network] = (net, integer_entropy_path(net, self.scale_table))
        net, entropy_path = self._rate_points[network]
        if net.g_a[2].block_mask.device != self.device:
            net.to(self.device)  # its parameters are the model's: only the masks stay behind
        position = OWN_GAIN + (code - network * GAIN_STEPS) / GAIN_STEPS
        return RateNetwork(network, net, position, self.z_tables[network], entropy_path)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_model_file(
    path: str | Path,
    name: str,
    net: MeanScaleHyperprior | MaskedMultiRateHyperprior,
    metadata: dict,
    weight_dtype: torch.dtype = torch.float32,
) -> str:
    """Write a model file (building its CDF tables) and return its sha256.

    A masked model's masks are stored bit-packed, and its hyper-latent tables per rate point.
    """
    net = net.cpu().eval()
    scales = scale_table()
    tables = build_gaussian_tables(scales).to_state("y")
    masks = {}
    if isinstance(net, MaskedMultiRateHyperprior):
        for k in range(net.num_rate_points):
            tables.update(net.rate_point_network(k).hyper_prior.build_tables().to_state(f"z{k}"))
        masks = {layer_key(layer): pack_masks(net.mask(layer)) for layer in net.masked_layers}
    else:
        tables.update(net.hyper_prior.build_tables().to_state("z"))
    weights = {
        k: (v.to(weight_dtype) if v.is_floating_point() else v)
        for k, v in net.state_dict().items()
        if not k.startswith("mask_")
    }
    torch.save(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": name,
            "config": net.config.to_dict(),
            "weights": weights,
            **({"masks": masks} if masks else {}),
            "tables": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tables.items()},
            "scale_table": torch.from_numpy(scales),
            "metadata": metadata,
        },
        path,
    )
    return sha256_file(path)


def load_model_file(
    path: str | Path, expected_sha256: str | None = None, weights_hash: bytes | None = None
) -> CodecModel:
    """Load a model file, verifying its sha256 when one is expected.

    expected_sha256: the whole digest (a registered model); weights_hash: the digest's first
    bytes as a bitstream carries them (ModelHashError before anything is unpickled when they
    differ). Raises ModelFileError for a missing, special, oversized, damaged or foreign file.
    Nothing in the file is executed: it is unpickled with torch's weights-only loader.
    """
    path = Path(path)
    try:
        data = read_file(path, MAX_MODEL_FILE_BYTES, "model file")
    except FileError as e:
        raise ModelFileError(str(e)) from None
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 and digest != expected_sha256:
        raise ModelFileError(
            f"{path}: sha256 {digest[:16]}... does not match the registered "
            f"{expected_sha256[:16]}... (damaged or replaced file)"
        )
    if weights_hash is not None and bytes.fromhex(digest[: 2 * len(weights_hash)]) != weights_hash:
        raise ModelHashError(
            f"{path}: weights {digest[:16]} are not the stream's ({weights_hash.hex()})"
        )
    try:
        raw = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged file
        raise ModelFileError(
            f"{path}: not a readable model file ({torch_load_reason(e)})"
        ) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a {FORMAT} file")
    if raw.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: model file version {raw.get('format_version')} unsupported")
    try:
        return _codec_model(raw, digest)
    except ModelFileError as e:
        raise ModelFileError(f"{path}: {e}") from None
    except Exception as e:  # a crafted file's entries may be of any type or shape
        detail = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")[:160]
        raise ModelFileError(
            f"{path}: not a usable model file ({type(e).__name__}: {detail})"
        ) from None


def _codec_model(raw: dict, digest: str) -> CodecModel:
    """The CodecModel a model file's entries describe; raises ModelFileError (or whatever a
    malformed entry makes the construction raise)."""
    check_model_id(raw["name"])
    config = HyperpriorConfig.from_dict(raw["config"])
    if not (
        1 <= config.N <= MAX_CHANNELS
        and 1 <= config.M <= MAX_CHANNELS
        and 2 <= len(config.lambdas) <= MAX_RATE_POINTS
    ):
        raise ModelFileError(
            f"architecture out of range (N, M 1..{MAX_CHANNELS}, 2..{MAX_RATE_POINTS} rate points)"
        )
    net = build_model(config)
    weights = {k: v.float() if v.is_floating_point() else v for k, v in raw["weights"].items()}
    if isinstance(net, MaskedMultiRateHyperprior):
        for layer in net.masked_layers:
            key = layer_key(layer)
            weights[f"mask_{key}"] = unpack_masks(raw["masks"][key], net.mask(layer).shape)
    try:
        net.load_state_dict(weights)
    except RuntimeError as e:  # a heading, then every mismatch on a line of its own
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        raise ModelFileError(
            f"weights do not fit the model it describes ({lines[min(1, len(lines) - 1)][:160]})"
        ) from None
    net.eval()
    tables = {k: v.numpy() for k, v in raw["tables"].items()}
    prefixes = (
        ["z"]
        if not isinstance(net, MaskedMultiRateHyperprior)
        else [f"z{k}" for k in range(net.num_rate_points)]
    )
    try:
        z_tables = [CdfTables.from_state(tables, prefix) for prefix in prefixes]
        y_tables = CdfTables.from_state(tables, "y")
    except (KeyError, ValueError) as e:
        raise ModelFileError(f"bad CDF tables ({e})") from None
    if any(len(t) != net.config.N for t in z_tables):
        raise ModelFileError(f"hyper-latent tables do not match N={net.config.N}")
    scales = raw["scale_table"].numpy()
    if len(y_tables) != scales.size:
        raise ModelFileError(f"{len(y_tables)} latent tables for {scales.size} scales")
    if not isinstance(raw["metadata"], dict):
        raise ModelFileError("metadata is not a mapping")
    return CodecModel(raw["name"], digest, net, z_tables, y_tables, scales, raw["metadata"])
