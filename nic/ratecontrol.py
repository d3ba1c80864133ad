"""Rate control inside the codec: a target bpp with about one analysis transform and one real
encode.

The analysis transform is most of an encode's time and runs once per network: a gain model has
one, a masked model one per rate point (each codes the positions around its rate point by
default, and may code those up to one rate point away). So the search predicts the network
before it runs one: the model's RatePrior gives a photo's bits at each rate point from how busy
it is (image_activity), and the network that codes the target on that curve runs first. Its
analysis output is then searched on the model's own rate estimate (-log2 of the likelihoods of
the quantized latents: the hyper-transforms, no entropy coding) at every gain code: at its own
gains where it may code the code, beyond them at its gain stretched by the model's mean gain
steps, a prediction good to about 0.15 rate point. Only when the target lies in another
network's codes does that network's analysis run and the search go on there; a code at the edge
of the analysed network's codes is taken instead when its estimate is close enough to the goal.
The code chosen is always coded by the network that codes it by default, so codec.encode at the
returned rate gives the same file.

One real encode follows; when its size misses the window, the container's size and the
payload's bias against the estimate, measured by that encode, correct the goal and the search
runs again on the analyses already made.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from nic.bitstream import GAIN_STEPS, unpack
from nic.codec import analysis, latent_bits, pack_stream, quantize
from nic.extensions import CodingTool
from nic.image_io import check_rgb8
from nic.model_file import CodecModel
from nic.models.masked import layer_key

SEARCH_BPP = (1e-4, 1e3)
"""The range of bpp a search aims at: targets outside are searched at its ends (no file of any
image is smaller than its header or larger than 1000 bpp)."""
ESTIMATE_TOLERANCE = 0.01
"""The search on the estimate stops within 1 % of its goal (the CTC windows are 5 % or wider)."""

PREDICTION_TOLERANCE = 0.05
"""It stops within 5 % at a code beyond those the network may code: there its gain is stretched,
and the estimate, a prediction good to about 0.15 rate point, only chooses the network whose
analysis runs next."""

MAX_STEPS = 12
"""Estimates one search on one network's curve may make (it needs 2 to 4 on photos)."""

DEFAULT_SLOPE = math.log(2) / GAIN_STEPS
"""Log bits per gain code for the first step of a search on a model without a RatePrior: bits
about double per rate point (a guess that only sets where the second estimate is made)."""

ACTIVITY_PIXELS = 1 << 20
"""image_activity reads about this many pixels (every row up to it, else rows spread evenly)."""


@dataclass(frozen=True)
class RatePrior:
    """A model's estimated bits of a photo at its rate points, from the photo's activity
    (image_activity): log bpp at rate point k = intercept[k] + slope[k] * activity, with the
    activity held within the range of the photos fitted."""

    intercept: tuple[float, ...]
    slope: tuple[float, ...]
    activity: tuple[float, float]

    def log_bpp(self, image: np.ndarray) -> np.ndarray:
        """The predicted log bpp of `image` at each rate point."""
        activity = min(max(image_activity(image), self.activity[0]), self.activity[1])
        return np.asarray(self.intercept) + np.asarray(self.slope) * activity


RATE_PRIORS: dict[str, RatePrior] = {
    "4f59bb4af577d51f": RatePrior(  # nic-masked-n128-v2
        intercept=(-4.551, -4.856, -4.381, -3.568, -2.353, -0.786),
        slope=(0.294, 0.842, 0.994, 0.981, 0.813, 0.517),
        activity=(2.06, 3.52),
    ),
    "752b4aea555a5517": RatePrior(  # nic-mshp-n128-v2
        intercept=(-4.546, -4.521, -4.2, -3.74, -3.182, -2.633, -2.142, -1.678, -1.244, -0.89),
        slope=(0.77, 0.93, 0.992, 0.993, 0.935, 0.856, 0.774, 0.692, 0.611, 0.543),
        activity=(2.06, 3.52),
    ),
}
"""RatePrior by the first 16 hex digits of a model's sha256, fitted on the 24 Kodak photos by
`python benchmarks/rate_control_cost.py --prior`: where the search starts, and so which
network's analysis runs first (the right one for 9 in 10 Kodak targets, each photo predicted
by a fit without it). A model not listed starts at its middle rate point."""


@dataclass(frozen=True)
class RateMatch:
    """The chosen rate position, the file, and what it cost to find: real encodes, rate
    estimates and analysis transforms (one per network whose analysis ran)."""

    rate: float
    data: bytes
    bpp: float
    encodes: int
    estimates: int
    analyses: int


class _Estimator:
    """Log estimated file bits of one network's analysis output at a gain code; the analysis
    transform runs once per network."""

    def __init__(self, model: CodecModel, image: np.ndarray, tool: CodingTool | None) -> None:
        self.model = model
        self.image = image
        self.tool = tool
        self.max_code = round(GAIN_STEPS * model.max_rate_position)
        self.owners = [model.default_network(code) for code in range(self.max_code + 1)]
        # (first, last) gain code of each network: those it codes by default, those it may code
        self.own_codes = _code_ranges(self.max_code, lambda code: [self.owners[code]])
        self.reach = _code_ranges(self.max_code, model.networks_for)
        self.analyses: dict[int, torch.Tensor] = {}
        self.known: dict[tuple[int, int], float] = {}
        self.calls = 0

    def g_a_out(self, network: int) -> torch.Tensor:
        """The analysis output of `network`, computed once."""
        if network not in self.analyses:
            code = self.own_codes[network][0]
            self.analyses[network] = analysis(self.model, self.image, code, network, self.tool)
        return self.analyses[network]

    def tolerance(self, network: int, code: int) -> float:
        """How close to the goal (log) a search on `network`'s curve must come at `code`."""
        low, high = self.reach[network]
        return ESTIMATE_TOLERANCE if low <= code <= high else PREDICTION_TOLERANCE

    def log_bits(self, network: int, code: int) -> float:
        """Log of the estimated bits of `network` at `code` (beyond the codes it may code, at
        its gain stretched by the model's mean gain steps: a prediction, never coded)."""
        if (network, code) not in self.known:
            self.calls += 1
            low, high = self.reach[network]
            near = min(max(code, low), high)
            rate_network = self.model.rate_network(near, network)
            gain, _ = rate_network.net.gains(rate_network.position)
            stretch = _mean_log_gain(self.model, code) - _mean_log_gain(self.model, near)
            bits = latent_bits(rate_network.net, self.g_a_out(network), gain * math.exp(stretch))
            self.known[network, code] = math.log(max(bits, 1.0))
        return self.known[network, code]


def _code_ranges(max_code: int, networks: Callable[[int], list[int]]) -> dict[int, tuple[int, int]]:
    """{network: (first, last)} of the gain codes 0..max_code whose networks(code) hold it."""
    ranges: dict[int, tuple[int, int]] = {}
    for code in range(max_code + 1):
        for network in networks(code):
            ranges[network] = (ranges.get(network, (code,))[0], code)
    return ranges


def _mean_log_gain(model: CodecModel, code: int) -> float:
    """A masked model's mean log gain at a gain code: its rate points' means, interpolated and
    extended linearly (0 for a gain model, whose one network codes every code)."""
    if not model.masked:
        return 0.0
    k = min(code // GAIN_STEPS, model.num_rate_points - 2)
    a = code / GAIN_STEPS - k
    low, high = (
        float(model.net.independent[i][layer_key("log_gain")].detach().mean()) for i in (k, k + 1)
    )
    return (1 - a) * low + a * high


def image_activity(image: np.ndarray) -> float:
    """Log of the mean absolute difference between horizontally and between vertically
    neighbouring pixel values, added: how busy a photo is, which sets its bits at every rate."""
    step = -(-image.shape[0] * image.shape[1] // ACTIVITY_PIXELS)
    rows, below = image[::step].astype(np.int16), image[1::step].astype(np.int16)
    pairs = min(len(rows), len(below))
    differences = (np.diff(rows, axis=1), below[:pairs] - rows[:pairs])
    busy = sum(float(np.abs(d).mean()) for d in differences if d.size)
    return math.log(max(busy, 1e-3))


def _start(model: CodecModel, image: np.ndarray, target_bpp: float) -> tuple[int, float]:
    """Where the search starts: the gain code that the model's RatePrior predicts for the
    image, and the log bits per gain code there."""
    prior = RATE_PRIORS.get(model.sha256[:16])
    if prior is None:
        return model.num_rate_points // 2 * GAIN_STEPS, DEFAULT_SLOPE
    logs = np.maximum.accumulate(prior.log_bpp(image))
    position = float(np.interp(math.log(target_bpp), logs, np.arange(len(logs))))
    k = min(int(position), len(logs) - 2)
    slope = (logs[k + 1] - logs[k]) / GAIN_STEPS
    max_code = round(GAIN_STEPS * model.max_rate_position)
    return min(round(position * GAIN_STEPS), max_code), slope if slope > 0 else DEFAULT_SLOPE


def _solve(
    estimator: _Estimator, network: int, goal: float, start: int, slope: float
) -> tuple[int, float]:
    """The gain code whose log bits on `network`'s curve are closest to goal, and the curve's
    slope there: secant steps on the (nearly linear) curve, kept inside the bracket found so
    far, until within the estimate's tolerance at that code."""
    points: dict[int, float] = {}
    below, above = -1, estimator.max_code + 1  # codes known to give fewer / more bits than goal
    code = min(max(start, 0), estimator.max_code)
    for _ in range(MAX_STEPS):
        value = points[code] = estimator.log_bits(network, code)
        if abs(value - goal) < estimator.tolerance(network, code):
            break
        if value < goal:
            below = code
        else:
            above = code
        if above - below <= 1 or below == estimator.max_code or above == 0:
            break
        slope = _secant(points, code, slope)
        guess = round(code + (goal - value) / slope)
        code = min(max(guess, below + 1), above - 1)
    best = min(points, key=lambda c: abs(points[c] - goal))
    return best, _secant(points, best, slope)


def _secant(points: dict[int, float], code: int, slope: float) -> float:
    """The slope between `code` and the other known point nearest it (else `slope`)."""
    others = [c for c in points if c != code]
    if not others:
        return slope
    near = min(others, key=lambda c: abs(c - code))
    secant = (points[code] - points[near]) / (code - near)
    return secant if secant > 0 else slope


def _locate(estimator: _Estimator, goal: float, start: int, slope: float, edge: float) -> int:
    """The gain code nearest the goal among the codes of the networks analysed, starting with
    the one that codes `start`: another network's analysis runs only when the target lies in its
    codes and the nearest code of the analysed ones is more than `edge` (log) from the goal."""
    network = estimator.owners[start]
    while True:
        code, slope = _solve(estimator, network, goal, start, slope)
        owner = estimator.owners[code]
        if owner == network:
            return code
        low, high = estimator.own_codes[network]
        nearest = min(max(code, low), high)
        if owner in estimator.analyses:  # the two networks' curves meet at their boundary
            low, high = estimator.own_codes[owner]
            other = min(max(code, low), high)
            return min(
                (nearest, other),
                key=lambda c: abs(estimator.log_bits(estimator.owners[c], c) - goal),
            )
        if slope * abs(code - nearest) <= edge:  # worth an estimate at the edge
            if abs(estimator.log_bits(network, nearest) - goal) <= edge:
                return nearest
        network, start = owner, code


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
    if not (math.isfinite(target_bpp) and target_bpp > 0):
        raise ValueError(f"target bpp must be a positive finite number, got {target_bpp}")
    min_bpp = 0.95 * target_bpp if min_bpp is None else min_bpp
    max_bpp = 1.05 * target_bpp if max_bpp is None else max_bpp
    height, width = image.shape[:2]
    pixels = height * width
    estimator = _Estimator(model, image, tool)
    # A target far beyond any file is searched as the nearest reachable one: its closest file.
    search_bpp = min(max(target_bpp, SEARCH_BPP[0]), SEARCH_BPP[1])
    code, slope = _start(model, image, search_bpp)
    goal_bits = search_bpp * pixels
    goal = math.log(goal_bits)
    edge = _edge_tolerance(target_bpp, min_bpp, max_bpp)
    tried: dict[int, bytes] = {}
    while len(tried) < max_encodes:
        code = _locate(estimator, goal, code, slope, edge)
        if code in tried:
            break
        latents = quantize(model, estimator.g_a_out(estimator.owners[code]), code, tool=tool)
        data = tried[code] = pack_stream(model, latents, code, width, height, tool)
        real_bpp = 8 * len(data) / pixels
        if min_bpp <= real_bpp <= max_bpp:
            break
        goal = _corrected_goal(goal_bits, data, estimator.log_bits(estimator.owners[code], code))
    code, data = min(
        tried.items(), key=lambda item: _miss(8 * len(item[1]) / pixels, min_bpp, max_bpp)
    )
    return RateMatch(
        code / GAIN_STEPS,
        data,
        8 * len(data) / pixels,
        len(tried),
        estimator.calls,
        len(estimator.analyses),
    )


def _corrected_goal(goal_bits: float, data: bytes, log_estimate: float) -> float:
    """The estimate (log) that gives goal_bits in a file, from a file and its estimate: the
    container's bits are a constant, the sub-streams' the estimate times their measured bias
    (coder and table overheads, a tool's own ways)."""
    _, substreams = unpack(data)
    payload = 8 * sum(len(substream) for substream in substreams)
    overhead = 8 * len(data) - payload
    return math.log(max(goal_bits - overhead, 1.0) * math.exp(log_estimate) / max(payload, 1))


def _edge_tolerance(target_bpp: float, min_bpp: float, max_bpp: float) -> float:
    """How far (log) from the goal an analysed network's edge code may be to be taken rather
    than another network's analysis: half the window's narrower side, room for the estimate's
    bias against the real file."""
    narrower = min(math.log(max_bpp / target_bpp), math.log(target_bpp / min_bpp))
    return max(narrower, 0.0) / 2


def _miss(bpp: float, low: float, high: float) -> float:
    """0 inside the window, else the relative distance to it."""
    return max(0.0, low - bpp) / low + max(0.0, bpp - high) / high
