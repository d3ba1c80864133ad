"""The nic codec behind the CTC harness's Codec interface (registered as the `nic` entry point).

nic does not import ctc: the interface is a structural Protocol, so this class only has to have
the attributes and methods it names.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

import nic
from nic import codec, zoo
from nic.extensions import CodingTool
from nic.model_file import CodecModel, load_model_file
from nic.ratecontrol import encode_to_target
from nic.tiling import LATENT_STRIDE, TILE

RUNTIME_BYTES = 400_000_000
"""torch and a zoo model in the process (measured: 330 MB peak after loading, before coding)."""

TRAINING_SETS = {
    "c157f35ad3cb0324": {
        "name": "737 natural photos: BSDS500 (500), Urban100 (100), Sun-Hays 80 (79), PolyU "
        "real-world noisy images' mean images (40), McMaster (18)",
        "licence": "non-commercial research use only: BSDS500's Corel photos are released by "
        "Berkeley for non-commercial research, and PolyU's licence allows non-commercial use "
        "only; no licence was recorded for Urban100, Sun-Hays 80 and McMaster (academic "
        "benchmark sets: check their terms before redistributing)",
    },
}
"""Training sets by the `names_sha` a model file records (the sha256 of its file names, 16 hex
digits): their public name and licence, which the recorded folder (a path on the training
machine) does not give."""


def training_data(data: dict) -> dict:
    """A model file's `training.data` record as a public description: the set's name and
    licence (TRAINING_SETS) in place of the training machine's paths."""
    known = TRAINING_SETS.get(str(data.get("names_sha")))
    described = {
        "name": known["name"] if known else f"{data.get('images', '?')} images, not a known set",
        "licence": known["licence"] if known else "not recorded",
        "images": data.get("images"),
        "names_sha": data.get("names_sha"),
    }
    if data.get("description"):  # "FOLDER: what it held, how it was packed" -> what and how
        text = re.sub(r"^\S*/\S*:\s*", "", str(data["description"]))
        described["description"] = text
    return described


FROZEN_RESULTS = str(Path(__file__).parent / "frozen")
"""Frozen results of nic-ref (ctc.frozen reads `<dataset>/manifest.json` below it)."""


@dataclass(frozen=True)
class RatePositionKnob:
    """Rate position: rate point k is k, fractions interpolate; a larger value gives more bits."""

    low: float
    high: float
    name: str = "rate_position"
    kind: str = "continuous"
    rate_increases: bool = True


class NicCodec:
    """A zoo model (default: the zoo's default) at a continuous rate position, with its own
    rate control (nic.ratecontrol): an estimate over the gain code, then real encodes."""

    name = "nic"
    extension = "nic"  # as `nic encode` names streams, and the CLIC decoder package reads them
    tile_size = (TILE * LATENT_STRIDE, TILE * LATENT_STRIDE)
    """nic's transforms run on tiles of 1024 x 1024 pixels (and a halo) when a picture does not
    fit one (nic.tiling)."""
    tool: CodingTool | None = None
    """A coding tool on top of the reference codec (nic.extensions): a tool's ctc codec is a
    subclass that sets it; None is the reference codec, the fixed anchor."""

    def __init__(self, model: str | None = None) -> None:
        self._model_name = model

    @cached_property
    def model(self) -> CodecModel:
        return zoo.load(self._model_name)

    @property
    def knob(self) -> RatePositionKnob:
        return RatePositionKnob(low=0, high=self.model.max_rate_position)

    @property
    def rate_points(self) -> list[float]:
        """Knob values of the trained rate points (the positions in between interpolate)."""
        return [float(k) for k in range(self.model.num_rate_points)]

    def version(self) -> str:
        reference = (
            f"nic {nic.__version__}, model {self.model.name} sha256:{self.model.sha256[:16]}"
        )
        return f"{reference}, tool {self.tool.version()}" if self.tool else reference

    def on_device(self, device: str) -> NicCodec:
        """This codec with its own copy of the model on a torch device ("cuda"): the zoo's
        cached model stays where it is. The entropy coding runs on the CPU."""
        name = self._model_name or zoo.default_name()
        if zoo.is_registered(name):
            entry = next(e for e in zoo.entries() if e.name == name)
            model = load_model_file(entry.path, expected_sha256=entry.sha256)
        else:
            model = load_model_file(name)
        model.net.to(device)
        other = copy.copy(self)  # the same codec (a tool's, with its switch) on another model
        other.__dict__["model"] = model  # the cached_property's value
        return other

    def training_lineage(self) -> list[dict]:
        """This model's training record, then its `init` parent's, and so on, each with its
        data described by training_data(); a parent that the zoo does not hold ends the list
        with "training": None. nic records `init` for masked models only."""
        chain, model, seen = [], self.model, set()
        while True:
            training = dict(model.metadata.get("training") or {})
            if isinstance(training.get("data"), dict):
                training["data"] = training_data(training["data"])
            chain.append({"model": model.name, "training": training or None})
            seen.add(model.name)
            parent = training.get("init")
            if not parent or parent in seen:
                return chain
            if not zoo.is_registered(parent):
                chain.append({"model": str(parent), "training": None})
                return chain
            model = zoo.load_registered(parent)

    def peak_memory(self, width: int, height: int) -> int:
        """The most bytes coding a width x height image takes (ctc.codec): torch and the model,
        and nic's working memory (nic.codec.coding_memory, measured)."""
        return RUNTIME_BYTES + codec.coding_memory(width, height)

    def decoder_package(self, out_zip: str, streams: str) -> str:
        """Write the CLIC decoder zip of this codec's model (nic.clic_package) after checking
        that every *.nic stream in the folder `streams` was coded with it; one line on it.
        Raises ValueError (PackageError) for another model's or a damaged stream, OSError."""
        if self.tool is not None:
            raise ValueError(f"{self.name}: a coding tool's decoder cannot be packaged yet")
        from nic.clic_package import build_decoder_package, summary

        return summary(build_decoder_package(out_zip, self._model_name, streams=streams))

    # The harness bounds image sizes when it reads originals, and decodes only streams it has
    # just encoded, so nic's own pixel budget does not apply here.
    def encode(self, image: np.ndarray, knob_value: float) -> bytes:
        return codec.encode(image, self.model, knob_value, max_pixels=None, tool=self.tool)

    def decode(self, data: bytes) -> np.ndarray:
        return codec.decode(data, self.model, max_pixels=None, tool=self.tool)

    def encode_to_target(
        self, image: np.ndarray, target_bpp: float, min_bpp: float, max_bpp: float
    ) -> tuple[float, bytes, int]:
        """(rate position, file, real encodes) from the codec's own rate control."""
        match = encode_to_target(image, self.model, target_bpp, min_bpp, max_bpp, tool=self.tool)
        return match.rate, match.data, match.encodes


class NicReference(NicCodec):
    """The fixed anchor of the coding-tool workflow: the reference codec (no tool) with the
    zoo's default model at this nic version. Its results on Kodak under the bundled conditions
    are frozen (FROZEN_RESULTS), so a contributor's run encodes only the tool; they stand in
    for its jobs only while nic's version and the model's sha256 are the frozen ones."""

    name = "nic-ref"
    frozen_results = FROZEN_RESULTS

    def __init__(self) -> None:
        super().__init__(None)
