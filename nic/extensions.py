"""Extension points of the reference codec: where a coding tool replaces or adds one part.

In the CTC's tool workflow the reference codec with every tool off is the fixed anchor; a
contributor turns one tool on and compares (docs/contributing-a-tool.md). A tool is a subclass
of CodingTool that overrides the hooks of the parts it changes; every hook's default is the
reference codec's own step, so a tool that overrides nothing codes the anchor's latents and
pixels (its stream differs only in naming the tool). nic.codec.encode/decode(tool=None) is the
reference path itself and writes version-3 streams, byte for byte the anchor's; with a tool,
streams are version 4 (version 5 when tiled) and carry the tool's name and sub-streams
(docs/bitstream.md).

The hooks, in coding order (shapes for one image; N, M: the model's hyper-latent and latent
channels; H, W: the padded image's size over 16, h, w over 64):

- analysis(net, x): the analysis transform, x float32 (1, 3, 16H, 16W) in [0, 1] ->
  (1, M, H, W), before the rate position's gain. A transform block.
- refine(net, y): encoder-side optimization of the gained latents y (1, M, H, W) float64
  before quantization (e.g. a latent search); the decoder never sees it.
- coded_latents(net, y): a bit-allocation map: bool (1, M, H, W), True where a latent is
  coded, or None for all, and the tool's sub-streams that let the decoder rebuild it. A latent
  that is not coded costs no bits and is decoded as its predicted mean.
- decode_coded_latents(substreams, shape): the decoder's side of coded_latents; must refuse
  (raise nic.bitstream.BitstreamError) anything coded_latents did not write.
- entropy_path(rate_network): the integer entropy-parameter path (means and CDF table indices,
  step by step: an entropy model or context); it must be integer-exact on every device, like
  nic.models.integer_synthesis.
- synthesis(net, y_hat, position): the synthesis transform, y_hat float32 (1, M, H, W) ->
  (1, 3, 16H, 16W). A transform block.
- post_filter(x_hat): on the synthesis output, before clamping to [0, 1] and rounding.

On an image larger than one tile (nic.tiling: 1024 x 1024 pixels), analysis, synthesis and
post_filter run tile by tile: they see one tile and its halo (32 pixels around it, clipped to
the padded image), so a hook that reaches further than that, or uses statistics of the whole
image, behaves differently on large images; entropy_path's plan starts on the tile's
hyper-latent cells and 2 around them. refine, coded_latents and decode_coded_latents always see
the whole latent.

A hook that adds learned parts keeps them in the tool (a torch.nn.Module of its own, with its
own weights file): the anchor's model file is never changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from nic.bitstream import BitstreamError, check_tool_name

if TYPE_CHECKING:
    from nic.model_file import RateNetwork
    from nic.models import IntegerElic, IntegerHyperSynthesis, MeanScaleHyperprior


class CodingTool:
    """A coding tool against the reference codec; subclass it and override hooks.

    name: what streams record (1..32 letters, digits and ._+-); version(): the exact version of
    the tool's code and weights, for result rows.
    """

    name: str = ""

    def version(self) -> str:
        """Exact version of the tool (code and weights); override when it has weights."""
        return self.name

    def analysis(self, net: MeanScaleHyperprior, x: torch.Tensor) -> torch.Tensor:
        return net.g_a(x)

    def refine(self, net: MeanScaleHyperprior, y: torch.Tensor) -> torch.Tensor:
        return y

    def coded_latents(
        self, net: MeanScaleHyperprior, y: torch.Tensor
    ) -> tuple[torch.Tensor | None, list[bytes]]:
        return None, []

    def decode_coded_latents(
        self, substreams: list[bytes], shape: tuple[int, ...]
    ) -> torch.Tensor | None:
        if substreams:  # the default writes none: anything else is not this tool's stream
            raise BitstreamError(f"{self.name}: its streams have no sub-streams of the tool")
        return None

    def entropy_path(self, rate_network: RateNetwork) -> IntegerHyperSynthesis | IntegerElic:
        return rate_network.entropy_path

    def synthesis(
        self, net: MeanScaleHyperprior, y_hat: torch.Tensor, position: float
    ) -> torch.Tensor:
        return net.synthesize(y_hat, position)

    def post_filter(self, x_hat: torch.Tensor) -> torch.Tensor:
        return x_hat


REFERENCE = CodingTool()
"""The reference codec's own steps (every hook at its default, no name): what nic.codec runs
when no tool is given."""


def check_tool(tool: CodingTool) -> CodingTool:
    """The tool, if its name can go in a stream (else ValueError)."""
    check_tool_name(tool.name)
    return tool
