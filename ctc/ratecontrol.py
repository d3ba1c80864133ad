"""Rate control: find the knob value that brings one image to a target bpp, with few encodes.

bpp is 8 * len(file bytes) / (width * height). Rate is assumed to grow monotonically along the
knob (in the direction the codec's Knob declares); the search stays correct, only slower, when
it does not. The search works on log(bpp), where rate curves are close to straight lines:

- continuous knobs: a bracketing secant search (regula falsi) that falls back to bisection when
  the bracket stops shrinking fast; it stops at the first encode inside the tolerance window;
- integer knobs: the same search over whole values until the two neighbouring values around the
  target are both known, then the admissible value closest to the target is taken, or with
  never_exceed the highest-rate value that does not exceed the target.

The first encode is at the middle of the knob's range. When the target lies outside what the
codec can reach, the end of the range is returned, flagged out of tolerance.

A codec may do its own matching (it estimates its rate cheaply, say): if it has a method
`encode_to_target(image, target_bpp, min_bpp, max_bpp) -> (knob_value, bytes[, encodes]) | None`,
that is tried first and counted as the real encodes it reports (one if it does not say); None
falls back to the search.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ctc.codec import Codec, SelfRateMatching


@dataclass(frozen=True)
class Tolerance:
    """Accepted deviation from a target, in percent of the target (min_percent <= 0 <= max)."""

    min_percent: float
    max_percent: float
    never_exceed: bool = False

    def window(self, target_bpp: float) -> tuple[float, float]:
        """Lowest and highest accepted bpp; never_exceed caps the highest at the target."""
        high = target_bpp * (1.0 + self.max_percent / 100.0)
        if self.never_exceed:
            high = min(high, target_bpp)
        return target_bpp * (1.0 + self.min_percent / 100.0), high

    def contains(self, target_bpp: float, bpp: float) -> bool:
        low, high = self.window(target_bpp)
        return low <= bpp <= high


@dataclass(frozen=True)
class Trial:
    """One real encode."""

    knob_value: float
    data: bytes
    bpp: float
    seconds: float


@dataclass(frozen=True)
class RateResult:
    """The chosen encode, and what it took to find it."""

    knob_value: float
    data: bytes
    bpp: float
    deviation_percent: float
    in_tolerance: bool
    n_encodes: int
    encode_seconds: float  # of the chosen encode
    search_seconds: float  # of all encodes
    method: str  # "search" or "codec"


def bpp_of(data: bytes, width: int, height: int) -> float:
    """Bits per pixel of a whole file: headers included, nothing estimated."""
    return 8.0 * len(data) / (width * height)


def deviation_percent(bpp: float, target_bpp: float) -> float:
    """Signed deviation from the target in percent of it (negative: fewer bits)."""
    return 100.0 * (bpp / target_bpp - 1.0)


class _Search:
    """Encodes at knob values (cached) and keeps the bracket around the target."""

    def __init__(self, codec: Codec, image: np.ndarray, target_bpp: float) -> None:
        self.codec, self.image, self.target = codec, image, target_bpp
        self.height, self.width = image.shape[:2]
        self.trials: dict[float, Trial] = {}
        knob = codec.knob
        self.integer = knob.kind == "integer"
        # u: the knob value oriented so that rate grows with u.
        self.sign = 1.0 if knob.rate_increases else -1.0
        self.u_min, self.u_max = sorted((self.sign * knob.low, self.sign * knob.high))
        self.below: float | None = None  # largest u seen with bpp <= target
        self.above: float | None = None  # smallest u seen with bpp > target
        self.widths: list[float] = []  # bracket width after each encode that had a bracket

    def encode(self, u: float) -> Trial:
        k = self.sign * u
        if k not in self.trials:
            start = time.perf_counter()
            data = self.codec.encode(self.image, k)
            seconds = time.perf_counter() - start
            if not data:
                raise ValueError(f"codec {self.codec.name!r} returned no bytes at knob {k}")
            bpp = bpp_of(data, self.width, self.height)
            self.trials[k] = Trial(k, data, bpp, seconds)
            if bpp <= self.target:
                self.below = u if self.below is None else max(self.below, u)
            else:
                self.above = u if self.above is None else min(self.above, u)
            if self.below is not None and self.above is not None:
                self.widths.append(self.above - self.below)
        return self.trials[k]

    def log_bpp(self, u: float) -> float:
        return math.log(self.trials[self.sign * u].bpp)

    def secant(self, u0: float, u1: float) -> float | None:
        """Where the line through (u0, log bpp) and (u1, log bpp) meets log(target)."""
        f0, f1 = self.log_bpp(u0), self.log_bpp(u1)
        if f1 == f0:
            return None
        return u0 + (math.log(self.target) - f0) * (u1 - u0) / (f1 - f0)


def _next_u(s: _Search, history: list[float]) -> float | None:
    """The next knob position to try, or None when the search has nothing left to learn.

    `history` holds the tried positions in order. The guess is the secant through the two
    latest trials, kept strictly inside the bracket once there is one; when the bracket has not
    halved over the last two steps, bisection is used instead.
    """
    guess = s.secant(history[-2], history[-1]) if len(history) >= 2 else None
    if s.below is None or s.above is None:
        side = s.below if s.above is None else s.above
        end = s.u_max if s.above is None else s.u_min
        if side == end:
            return None  # the target is beyond what the codec reaches
        if guess is None or (guess - side) * (end - side) <= 0:
            guess = side + 0.25 * (s.u_max - s.u_min) * math.copysign(1.0, end - side)
        guess = min(max(guess, s.u_min), s.u_max)
        if s.integer:
            guess = float(round(guess))
            if guess == side:
                guess = side + math.copysign(1.0, end - side)
        return guess
    lo, hi = s.below, s.above
    if hi - lo <= (1 if s.integer else 1e-9 * (s.u_max - s.u_min)):
        return None  # adjacent integers, or a bracket too narrow to matter
    stalled = len(s.widths) >= 3 and s.widths[-1] > 0.5 * s.widths[-3]
    if guess is None or stalled:
        guess = 0.5 * (lo + hi)
    if s.integer:
        return float(min(max(round(guess), lo + 1), hi - 1))
    return guess if lo < guess < hi else 0.5 * (lo + hi)


def _choose(trials: list[Trial], target_bpp: float, tolerance: Tolerance) -> Trial:
    """In-window trials first; then never_exceed prefers the highest bpp not above the target,
    otherwise the smallest deviation (ties: fewer bits)."""
    inside = [t for t in trials if tolerance.contains(target_bpp, t.bpp)]
    pool = inside or trials
    if tolerance.never_exceed:
        fitting = [t for t in pool if t.bpp <= target_bpp]
        if fitting:
            return max(fitting, key=lambda t: t.bpp)
        return min(pool, key=lambda t: t.bpp)
    return min(pool, key=lambda t: (abs(t.bpp - target_bpp), t.bpp))


def match_rate(
    codec: Codec,
    image: np.ndarray,
    target_bpp: float,
    tolerance: Tolerance,
    max_encodes: int = 12,
) -> RateResult:
    """Encode `image` as close to `target_bpp` as the tolerance and the knob allow."""
    if target_bpp <= 0:
        raise ValueError(f"target bpp must be positive, got {target_bpp}")
    height, width = image.shape[:2]
    start = time.perf_counter()
    if isinstance(codec, SelfRateMatching):
        low, high = tolerance.window(target_bpp)
        matched = codec.encode_to_target(image, target_bpp, low, high)
        if matched is not None:
            knob_value, data, *reported = matched
            encodes = int(reported[0]) if reported else 1
            seconds = time.perf_counter() - start
            bpp = bpp_of(data, width, height)
            return RateResult(
                float(knob_value), data, bpp, deviation_percent(bpp, target_bpp),
                tolerance.contains(target_bpp, bpp), encodes, seconds, seconds, "codec",
            )  # fmt: skip
    s = _Search(codec, image, target_bpp)
    mid = 0.5 * (s.u_min + s.u_max)
    u: float | None = float(round(mid)) if s.integer else mid
    history: list[float] = []
    while u is not None and len(s.trials) < max_encodes:
        trial = s.encode(u)
        history.append(u)
        if not s.integer and tolerance.contains(target_bpp, trial.bpp):
            break
        u = _next_u(s, history)
    best = _choose(list(s.trials.values()), target_bpp, tolerance)
    return RateResult(
        best.knob_value, best.data, best.bpp, deviation_percent(best.bpp, target_bpp),
        tolerance.contains(target_bpp, best.bpp), len(s.trials), best.seconds,
        time.perf_counter() - start, "search",
    )  # fmt: skip
