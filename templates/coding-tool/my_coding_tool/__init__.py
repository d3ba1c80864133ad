"""A coding tool against nic's fixed anchor: a decoder-side sharpening post-filter.

Replace the hook with your tool's (nic.extensions.CodingTool lists them: analysis, refine,
coded_latents / decode_coded_latents, entropy_path, synthesis, post_filter); keep the rest.

The post-filter adds `strength` times the difference between the synthesis output and its 3x3
box blur (unsharp masking) before nic clamps and rounds the pixels.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from nic.ctc_codec import NicCodec
from nic.extensions import CodingTool

STRENGTH = 0.2


class SharpenTool(CodingTool):
    """Unsharp masking of the decoded image, x + s (x - blur3x3(x)); x (1, 3, H, W) float32."""

    name = "my-tool"

    def __init__(self, strength: float = STRENGTH) -> None:
        self.strength = strength

    def version(self) -> str:
        return f"{self.name} 0.1.0 (unsharp 3x3, strength {self.strength:g})"

    def post_filter(self, x_hat: torch.Tensor) -> torch.Tensor:
        blurred = F.avg_pool2d(F.pad(x_hat, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        return x_hat + self.strength * (x_hat - blurred)


class MyToolCodec(NicCodec):
    """The fixed anchor's codec (nic's default zoo model) with the tool on; `my-tool:off`
    switches it off, which codes exactly the anchor's bitstreams."""

    name = "my-tool"

    def __init__(self, switch: str | None = None) -> None:
        if switch not in (None, "on", "off"):
            raise ValueError(f"my-tool: the argument is on or off, not {switch!r}")
        super().__init__(None)
        self.tool = None if switch == "off" else SharpenTool()
