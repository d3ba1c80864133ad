"""Named, versioned trained models with the sha256 of their files (registry in models.json).

Each registered model has a permanent index (1, 2, ...; never reused), which bitstreams carry
instead of its name; index 0 (bitstream.UNREGISTERED) means a model file the zoo does not hold.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from nic.bitstream import UNREGISTERED
from nic.model_file import CodecModel, ModelFileError, load_model_file

ZOO_DIR = Path(__file__).parent
REGISTRY = ZOO_DIR / "models.json"


@dataclass(frozen=True)
class ZooEntry:
    name: str
    index: int
    file: str
    sha256: str
    description: str

    @property
    def path(self) -> Path:
        return ZOO_DIR / self.file


def entries() -> list[ZooEntry]:
    """Registered models, the default first."""
    raw = json.loads(REGISTRY.read_text())
    return [ZooEntry(**e) for e in raw["models"]]


def default_name() -> str:
    return entries()[0].name


class UnknownModelError(ModelFileError):
    """A name that the zoo does not register."""


@cache
def load_registered(name: str) -> CodecModel:
    """The zoo model registered as `name`, never a file path: what a bitstream's model id may
    select. Raises UnknownModelError for any other name, ModelFileError for a damaged file."""
    by_name = {e.name: e for e in entries()}
    if name not in by_name:
        raise UnknownModelError(f"unknown model {name!r}; the zoo has: {', '.join(by_name)}")
    entry = by_name[name]
    return load_model_file(entry.path, expected_sha256=entry.sha256)


def load_index(index: int) -> CodecModel:
    """The zoo model with permanent index `index`. Raises UnknownModelError."""
    by_index = {e.index: e.name for e in entries()}
    if index not in by_index:
        raise UnknownModelError(
            f"model index {index} is not in this nic's zoo (it has "
            + ", ".join(f"{i}: {n}" for i, n in sorted(by_index.items()))
            + ")"
        )
    return load_registered(by_index[index])


def index_of(model: CodecModel) -> int:
    """The zoo index of a model whose file is a registered one (same sha256), else
    UNREGISTERED."""
    return next((e.index for e in entries() if e.sha256 == model.sha256), UNREGISTERED)


def is_registered(name: str) -> bool:
    return any(e.name == name for e in entries())


def load(name_or_path: str | None = None, weights_hash: bytes | None = None) -> CodecModel:
    """A zoo model by name (default: the zoo's first), or a model file by path: what a user
    names on a command line. A registered name always means the zoo's model, even where a file
    of that name exists; anything else that exists, ends in .pt or holds a path separator is a
    file (whose weights must start with `weights_hash` when given). Raises ModelFileError."""
    if name_or_path is None:
        return load_registered(default_name())
    if is_registered(name_or_path):
        return load_registered(name_or_path)
    path = Path(name_or_path)
    if name_or_path.endswith(".pt") or os.sep in name_or_path or os.path.lexists(path):
        return load_model_file(path, weights_hash=weights_hash)
    return load_registered(name_or_path)  # raises UnknownModelError
