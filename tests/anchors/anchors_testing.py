"""A JPEG anchor with frozen results in a folder named by $CTC_TEST_FROZEN, registered in the
ctc.codecs group through a real metadata-only distribution (install_frozen_jpeg); it says it
cannot encode here when $CTC_TEST_UNAVAILABLE holds a reason."""

from __future__ import annotations

import os
from pathlib import Path

from anchors.jpeg import JpegCodec


class FrozenJpeg(JpegCodec):
    name = "frozenjpeg"

    @property
    def frozen_results(self) -> str | None:
        return os.environ.get("CTC_TEST_FROZEN")

    @property
    def unavailable(self) -> str | None:
        """Like an external encoder that is not installed, when $CTC_TEST_UNAVAILABLE says so."""
        return os.environ.get("CTC_TEST_UNAVAILABLE")


def install_frozen_jpeg(folder: Path) -> Path:
    info = folder / "ctc_frozen_test-0.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ctc-frozen-test\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(
        "[ctc.codecs]\nfrozenjpeg = anchors_testing:FrozenJpeg\n"
    )
    return folder
