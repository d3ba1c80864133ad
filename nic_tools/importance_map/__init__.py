"""Content-weighted importance map, a coding tool against nic-ref.

After M. Li, W. Zuo, S. Gu, D. Zhao, D. Zhang, "Learning Convolutional Networks for
Content-weighted Image Compression", CVPR 2018: a small network computes, from the analysis
features, an importance p(x) in [0, 1] per latent position; the map keeps the first ceil(L p)
of L channel groups at each position and drops the rest, so that bits go where the content needs
them; the sum of the map is the paper's continuous rate proxy in training.

Fitted to nic (nic.extensions): the map is a bit-allocation map (`coded_latents`): a dropped
latent is not coded and decodes as the anchor's predicted mean; the map's integers
g = ceil(L p) in 0..L are coded in the tool's own sub-stream with one integer CDF table; the
channels are ranked once (`order`, a permutation stored with the weights), so that "the first
groups" are the channels that carry the most information on average. The paper's binarizer has
no counterpart: nic's latents are integers coded by the anchor's entropy model, so the
quantizer the paper binarizes with is nic's own rounding.

Shapes: y, the anchor's gained latents, (1, M, H, W) (H, W: the padded image over 16); the map
(1, 1, H, W); the mask (1, M, H, W) bool.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from nic.bitstream import BitstreamError
from nic.ctc_codec import NicCodec
from nic.entropy import (
    CdfTables,
    EntropyDecodingError,
    decode_symbols,
    encode_symbols,
    quantize_pmf,
)
from nic.extensions import CodingTool
from nic.model_file import sha256_file

GROUPS = 16
"""L, the channel groups (M = 192 latents: 12 channels each)."""
WEIGHTS = Path(__file__).parent / "weights.pt"
"""The trained map network, channel order and map table, when present (else untrained)."""
MODEL = Path(__file__).parent / "model.pt"
"""The anchor's model fine-tuned with the map (train.py --anchor fine-tune), when present: the
tool then codes with it instead of nic-ref's model."""


class ImportanceNet(nn.Module):
    """p(x) in [0, 1] from the gained latents: (1, M, H, W) float32 -> (1, 1, H, W)."""

    def __init__(self, channels: int, width: int = 64) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 1, 1),
            nn.Sigmoid(),
        )

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.layers(torch.sign(y) * torch.log1p(y.abs()))


class GroupMask(torch.autograd.Function):
    """The channel mask of an importance map, with the paper's proxy gradient.

    forward(p (B, 1, H, W), group (M,) int64: each channel's group rank 0..L-1) -> mask
    (B, M, H, W) float32, 1 where group < ceil(L p). The mask is a step function of p; the paper
    back-propagates through it as if each step were a ramp one level wide: dm_k/dp = L where
    group_k - 1 <= L p < group_k + 1, else 0.
    """

    @staticmethod
    def forward(ctx, p: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        levels = torch.ceil(GROUPS * p)
        ctx.save_for_backward(p, group)
        return (group.view(1, -1, 1, 1) < levels).to(p.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        p, group = ctx.saved_tensors
        scaled = GROUPS * p
        k = group.view(1, -1, 1, 1).to(p.dtype)
        window = ((scaled >= k - 1) & (scaled < k + 1)).to(p.dtype)
        return (grad * window * GROUPS).sum(dim=1, keepdim=True), None


def group_ranks(order: torch.Tensor) -> torch.Tensor:
    """Each channel's group (0 = kept first) from a permutation of the M channels, most
    important first: (M,) int64."""
    m = order.numel()
    rank = torch.empty_like(order)
    rank[order] = torch.arange(m, device=order.device)
    return rank * GROUPS // m


class ImportanceMapTool(CodingTool):
    """The importance map as a bit-allocation map (nic.extensions.CodingTool.coded_latents)."""

    name = "importance-map"

    def __init__(self, weights: Path | None = WEIGHTS, channels: int = 192) -> None:
        self.net = ImportanceNet(channels)
        self.order = torch.arange(channels)
        self.map_counts = quantize_pmf(np.ones(GROUPS + 1))
        self.source = "untrained"
        if weights is not None and Path(weights).is_file():
            state = torch.load(weights, map_location="cpu", weights_only=True)
            self.net.load_state_dict(state["net"])
            self.order = state["order"].long()
            self.map_counts = state["map_counts"].numpy().astype(np.int32)
            self.source = f"weights sha256:{sha256_file(weights)[:16]}"
        self.net.eval()
        self.tables = CdfTables.from_pmfs([self.map_counts], [0])

    def version(self) -> str:
        return f"{self.name} 0.1 (L={GROUPS}, {self.source})"

    def groups(self, y: torch.Tensor) -> torch.Tensor:
        """g = ceil(L p): (1, 1, H, W) int64 in 0..L."""
        with torch.inference_mode():
            p = self.net.to(y.device)(y.float())
        return torch.ceil(GROUPS * p).long().clamp(0, GROUPS)

    def mask(self, g: torch.Tensor, channels: int) -> torch.Tensor:
        ranks = group_ranks(self.order.to(g.device))[:channels]
        return ranks.view(1, -1, 1, 1) < g

    def coded_latents(self, net, y):
        g = self.groups(y)
        values = g.cpu().numpy()
        return self.mask(g, y.shape[1]), [
            encode_symbols(values, np.zeros_like(values), self.tables)
        ]

    def decode_coded_latents(self, substreams, shape):
        if len(substreams) != 1:
            raise BitstreamError(f"{self.name}: expected 1 sub-stream, got {len(substreams)}")
        b, m, h, w = shape
        if m != self.order.numel():
            raise BitstreamError(f"{self.name}: made for {self.order.numel()} latents, not {m}")
        index = np.zeros((1, 1, h, w), dtype=np.int64)
        try:
            g = decode_symbols(substreams[0], index, self.tables, f"{self.name} map")
        except EntropyDecodingError as e:
            raise BitstreamError(str(e)) from None
        if g.min() < 0 or g.max() > GROUPS:
            raise BitstreamError(f"{self.name}: map values outside 0..{GROUPS}")
        return self.mask(torch.from_numpy(g), m)


class ImportanceMapCodec(NicCodec):
    """nic-ref's codec with the importance map on (with the anchor's model fine-tuned with the
    map where MODEL exists); `nic-importance-map:off` is nic-ref itself."""

    name = "nic-importance-map"

    def __init__(self, switch: str | None = None, model: Path = MODEL) -> None:
        if switch not in (None, "on", "off"):
            raise ValueError(f"nic-importance-map: the argument is on or off, not {switch!r}")
        on = switch != "off"
        super().__init__(str(model) if on and model.is_file() else None)
        self.tool = ImportanceMapTool() if on else None


__all__ = ["GROUPS", "GroupMask", "ImportanceMapCodec", "ImportanceMapTool", "ImportanceNet"]
