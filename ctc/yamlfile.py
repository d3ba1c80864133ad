"""YAML for the harness's own files (conditions, dataset manifests): safe, and strict about
duplicate keys, which PyYAML otherwise resolves silently by keeping the last (a class or a
metric written twice would vanish without a word)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ctc.files import read_small_file


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a mapping with the same key twice."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


MAX_BYTES = 1 << 22
"""4 MiB: far more than a condition or a manifest of thousands of images takes."""


def load(text: str) -> Any:
    """The document in `text`; raises yaml.YAMLError (duplicate keys included) as safe_load."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)


def read(path: str | Path) -> Any:
    """The document in the file `path`, read only if it is a regular file of at most MAX_BYTES.
    Raises OSError, ctc.files.NotASmallFileError, UnicodeDecodeError or yaml.YAMLError."""
    return load(read_small_file(path, MAX_BYTES).decode("utf-8"))
