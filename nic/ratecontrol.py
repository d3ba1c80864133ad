"""Rate control inside the codec: hit a target bpp with one real encode in most cases.

The analysis transform runs once per network (a masked model's rate points are networks). The
gain code (1/256 of a rate point) is then searched on the model's own rate estimate, -log2 of the
likelihoods of the quantized latents, which needs only the hyper-transforms and no entropy coding.
One real encode follows; when its size misses the window, the estimate's bias measured by that
encode corrects the goal and the search runs again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from nic.bitstream import GAIN_STEPS
from nic.codec import analysis, pack_stream, quantize
from nic.extensions import CodingTool
from nic.image_io import check_rgb8
from nic.model_file import CodecModel

ESTIMATE_TOLERANCE = 0.01
"""The search on the estimate stops within 1 % of its goal (the CTC windows are 5 % or wider)."""


@dataclass(frozen=True)
class RateMatch:
    """The chosen rate position, the file, and what it cost to find."""

    rate: float
    data: bytes
    bpp: float
    encodes: int
    estimates: int


class _Estimator:
    """Estimated file bits at a gain code, from one analysis transform of the image per network
    (a gain model has one; a masked model one per rate point)."""

    def __init__(self, model: CodecModel, image: np.ndarray, tool: CodingTool | None) -> None:
        self.model = model
        self.image = image
        self.tool = tool
        self.analyses: dict[int, torch.Tensor] = {}
        self.calls = 0

    def g_a_out(self, code: int) -> torch.Tensor:
        """The analysis output of the network that codes `code`, computed once."""
        network = id(self.model.rate_network(code).net)
        if network not in self.analyses:
            self.analyses[network] = analysis(self.model, self.image, code, tool=self.tool)
        return self.analyses[network]

    def bits(self, code: int) -> float:
        self.calls += 1
        network = self.model.rate_network(code)
        net = network.net
        gain, _ = net.gains(network.position)
        return net.float_estimate(self.g_a_out(code) * gain)[0]


def _search(estimator: _Estimator, goal_bits: float, max_code: int, known: dict) -> int:
    """The gain code whose estimate is closest to goal_bits: regula falsi on log bits."""

    def log_bits(code: int) -> float:
        if code not in known:
            known[code] = math.log(max(estimator.bits(code), 1.0))
        return known[code]

    lo, hi, goal = 0, max_code, math.log(max(goal_bits, 1.0))
    if log_bits(lo) >= goal:
        return lo
    if log_bits(hi) <= goal:
        return hi
    while hi - lo > 1:
        f_lo, f_hi = log_bits(lo) - goal, log_bits(hi) - goal
        guess = round(lo + (hi - lo) * -f_lo / (f_hi - f_lo))
        code = min(max(guess, lo + 1), hi - 1)
        if abs(log_bits(code) - goal) < ESTIMATE_TOLERANCE:
            return code
        if log_bits(code) < goal:
            lo = code
        else:
            hi = code
        if hi - lo > 8 and min(code - lo, hi - code) < (hi - lo) / 8:
            # A lopsided step: bisect once so the bracket keeps shrinking fast.
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if log_bits(mid) < goal else (lo, mid)
    return lo if goal - log_bits(lo) < log_bits(hi) - goal else hi


@torch.inference_mode()
def encode_to_target(
    image: np.ndarray,
    model: CodecModel,
    target_bpp: float,
    min_bpp: float | None = None,
    max_bpp: float | None = None,
    max_encodes: int = 4,
    tool: CodingTool | None = None,
) -> RateMatch:
    """Encode `image` near `target_bpp`, inside [min_bpp, max_bpp] (default ±5 %) if reachable.

    tool: a coding tool (nic.extensions); the estimate is the reference codec's, whose bias
    against the tool's real files the real encodes correct like any other.
    """
    check_rgb8(image)
    if target_bpp <= 0:
        raise ValueError(f"target bpp must be positive, got {target_bpp}")
    min_bpp = 0.95 * target_bpp if min_bpp is None else min_bpp
    max_bpp = 1.05 * target_bpp if max_bpp is None else max_bpp
    height, width = image.shape[:2]
    pixels = height * width
    max_code = round(GAIN_STEPS * model.max_rate_position)
    estimator = _Estimator(model, image, tool)
    known: dict[int, float] = {}
    goal_bits = target_bpp * pixels
    tried: dict[int, bytes] = {}
    while len(tried) < max_encodes:
        code = _search(estimator, goal_bits, max_code, known)
        if code in tried:
            break
        latents = quantize(model, estimator.g_a_out(code), code, tool=tool)
        data = tried[code] = pack_stream(model, latents, code, width, height, tool)
        real_bits = 8 * len(data)
        if min_bpp <= real_bits / pixels <= max_bpp:
            break
        # The estimate misses the file by header, coder and table overheads: scale them out.
        goal_bits *= target_bpp * pixels / real_bits
    code, data = min(
        tried.items(), key=lambda item: _miss(8 * len(item[1]) / pixels, min_bpp, max_bpp)
    )
    return RateMatch(code / GAIN_STEPS, data, 8 * len(data) / pixels, len(tried), estimator.calls)


def _miss(bpp: float, low: float, high: float) -> float:
    """0 inside the window, else the relative distance to it."""
    return max(0.0, low - bpp) / low + max(0.0, bpp - high) / high
