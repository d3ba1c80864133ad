"""Conventional codecs behind ctc's Codec interface (docs/anchors.md)."""

from pathlib import Path

FROZEN_RESULTS = str(Path(__file__).parent / "results")
"""Where the anchors' frozen results live (ctc.frozen reads `<dataset>/<codec>.csv` below it)."""
