"""Rate allocation across the images of a CLIC test set: one coded version of each image.

Each image i comes with candidate RD points j (b_ij bytes, d_ij SSE over its RGB samples,
optionally its MS-SSIM m_ij); an allocation picks one point per image. CLIC scores the set as
one target (ctc.clic.rules), which gives two problems, both multiple-choice knapsacks
(NP-hard in general):

- low-rate track, `allocate_budget`: minimise sum d (aggregate PSNR is a decreasing function
  of the total SSE, so the distortion to add up is per-image SSE, not per-image PSNR) subject
  to sum b <= budget;
- transparent track, `allocate_thresholds`: minimise sum b subject to aggregate PSNR >= a
  floor and pixel-weighted MS-SSIM >= a floor.

Both are heuristics with measured gaps (tests/ctc/test_clic_allocate.py); `exact_allocation`
solves the budget problem exactly, in pseudo-polynomial time, for checks.

An infeasible problem (a budget below the smallest files, thresholds no combination meets)
raises InfeasibleError, a ValueError: a result flagged infeasible is too easy to submit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_array

from ctc.clic.rules import (
    PEAK,
    SAMPLES_PER_PIXEL,
    TRANSPARENT_MIN_MSSSIM,
    TRANSPARENT_MIN_PSNR,
    aggregate_msssim,
    aggregate_psnr,
)

_LP_TOLERANCE = 1e-6  # an LP variable above this counts as used when rounding


class InfeasibleError(ValueError):
    """No allocation meets the constraint (budget or thresholds)."""


class TooLargeError(ValueError):
    """The exact search would keep more (bytes, SSE) pairs than it was allowed."""


@dataclass(frozen=True)
class RdPoint:
    """One coded version of one image.

    nbytes: size of the compressed file in bytes; sse: sum of squared errors over all
    3 * H * W RGB samples on the 0-255 scale; pixels: H * W; msssim: the image's MS-SSIM when
    measured; key: what produced the point (a knob value, a file name), carried through as is.
    """

    nbytes: int
    sse: float
    pixels: int
    msssim: float | None = None
    key: object = None

    def __post_init__(self) -> None:
        if isinstance(self.nbytes, bool) or not isinstance(self.nbytes, Integral):
            raise ValueError(f"nbytes must be an integer, got {self.nbytes!r}")
        if self.nbytes < 0:
            raise ValueError(f"nbytes must be >= 0, got {self.nbytes}")
        if isinstance(self.pixels, bool) or not isinstance(self.pixels, Integral):
            raise ValueError(f"pixels must be an integer, got {self.pixels!r}")
        if self.pixels <= 0:
            raise ValueError(f"pixels must be > 0, got {self.pixels}")
        if not isinstance(self.sse, Real) or not math.isfinite(self.sse) or self.sse < 0:
            raise ValueError(f"sse must be a finite number >= 0, got {self.sse!r}")
        most = SAMPLES_PER_PIXEL * self.pixels * PEAK * PEAK
        if self.sse > most:
            raise ValueError(
                f"sse {self.sse} exceeds {most:.0f}, the most {self.pixels} pixels allow"
            )
        if self.msssim is not None and not (
            isinstance(self.msssim, Real) and math.isfinite(self.msssim)
        ):
            raise ValueError(f"msssim must be a finite number or None, got {self.msssim!r}")


@dataclass(frozen=True)
class ImagePoints:
    """An image's candidate points (any order, at least one; all of the same pixel count)."""

    name: str
    points: tuple[RdPoint, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", tuple(self.points))
        if not self.points:
            raise ValueError(f"image {self.name!r} has no points")
        counts = sorted({p.pixels for p in self.points})
        if len(counts) > 1:
            raise ValueError(f"image {self.name!r}: its points disagree on pixels: {counts}")

    @property
    def pixels(self) -> int:
        """H * W of the image."""
        return int(self.points[0].pixels)


@dataclass(frozen=True)
class Allocation:
    """One point per image and the dataset's totals.

    choice[i]: index into images[i].points; keys[i]: that point's key; total_bytes: sum of the
    chosen files' sizes; total_sse: sum of their SSEs; psnr: aggregate PSNR in dB; msssim:
    aggregate MS-SSIM, None unless every chosen point has one. lam, mu: the multipliers the
    solver ended on, in the units its docstring gives (lam from `allocate_budget`, both from
    `allocate_thresholds`, neither from `exact_allocation`).
    """

    choice: tuple[int, ...]
    keys: tuple[object, ...]
    total_bytes: int
    total_sse: float
    psnr: float
    msssim: float | None
    lam: float | None = None
    mu: float | None = None


def allocate_budget(
    images: Sequence[ImagePoints], budget: int, starts: Sequence[Sequence[int]] = ()
) -> Allocation:
    """The points that maximise aggregate PSNR with the files' total size <= budget bytes.

    1. Lagrangian: each image takes the vertex of the lower convex hull of its (bytes, SSE)
       points that minimises SSE + lam * bytes (ties to fewer bytes); the total size falls as
       lam grows, and a bisection over the hull slopes (the only values where a choice
       changes, so the search is exact) finds the smallest lam whose choice fits. Such a
       choice is optimal for its own total size, over all points, hull or not.
    2. Greedy fill: while some upgrade fits in the bytes left, take the one with the largest
       SSE saved per byte added, over all points of all images (points off the hull
       included); one that saves SSE without adding bytes comes first.

    starts: other choices to fill from (point indexes per image, such as every image at one
    common target), each kept only if it fits; the fill of each runs too and the choice with
    the least SSE (then fewest bytes) wins, so the result is never worse than any of them.
    lam is in SSE per byte. Raises InfeasibleError when even every image's smallest point
    exceeds the budget. A heuristic, checked against `exact_allocation` on seeded random sets
    (tests/ctc/test_clic_allocate.py): it lost at most 2.38 dB of aggregate PSNR over 200 sets
    of 3-8 images (0.1 dB on average, none on two thirds of them), 0.26 dB at 12 images and
    0.026 dB at 50. Its loss comes from trades it cannot see: one image taking a large step
    paid for by others stepping down.
    """
    images = _checked(images)
    budget = _checked_budget(images, budget)
    hulls = [_Hull.of(image) for image in images]
    lam = _bisect_lambda(hulls, budget)
    table = _Table.of(images)
    candidates = [np.array([h.vertex(lam) for h in hulls])]
    for start in starts:
        start = np.asarray(start, dtype=np.int64)
        if start.shape != (len(images),) or not all(
            0 <= j < len(image.points) for j, image in zip(start, images, strict=True)
        ):
            raise ValueError("a start names one point of each image")
        if int(table.at(start)[0].sum()) <= budget:
            candidates.append(start)
    filled = [_greedy_fill(table, start, budget) for start in candidates]
    best = min(filled, key=lambda c: (math.fsum(table.at(c)[1]), int(table.at(c)[0].sum())))
    return _allocation(images, best, lam=lam)


def allocate_thresholds(
    images: Sequence[ImagePoints],
    min_psnr: float | None = TRANSPARENT_MIN_PSNR,
    min_msssim: float | None = TRANSPARENT_MIN_MSSSIM,
) -> Allocation:
    """The points with the fewest total bytes such that aggregate PSNR >= min_psnr dB and
    aggregate MS-SSIM >= min_msssim (CLIC 2019 transparent track: 40 dB and 0.993). Either
    floor may be None to leave it out; MS-SSIM needs a value on every point.

    1. LP relaxation (scipy's HiGHS): each image's choice relaxed to weights over its points.
       Its duals are the multipliers of the Lagrangian bytes + lam * SSE - mu * pixels *
       MS-SSIM that the best search over (lam, mu) would find; lam is in bytes per unit of
       total SSE, mu in bytes per unit of sum(pixels * MS-SSIM) (0 for a floor left out).
       A basic solution leaves at most two images split between points; two integer starts
       round them: each image at the largest of its used points, and at the smallest.
    2. Greedy repair, if a floor is still missed: take the move with the largest shortfall
       removed per byte added, the shortfall being the dB missing in PSNR plus the dB missing
       in MS-SSIM (-10 log10(1 - MS-SSIM)).
    3. Greedy trim: while some move to a smaller point keeps both floors, take the one with
       the most bytes saved per unit of priced loss (lam * SSE added + mu * pixels * MS-SSIM
       lost).
    4. Swaps: while one image moving up to its next larger point and another down to its next
       smaller one save bytes together and keep both floors, take the pair saving the most,
       then trim again.

    Steps 2 to 4 run from both starts and the smaller result is kept. A heuristic, checked
    against a search of all combinations on seeded random sets of 3-6 images x 3-6 points
    (tests/ctc/test_clic_allocate.py): on 200 sets it always met both floors and took at most
    4.2% more bytes than the fewest possible (0.14% on average, the fewest on 95% of them).

    Raises InfeasibleError when a floor is out of reach even with every image at its best
    point for that metric, when the relaxation is infeasible, or when the repair finds no
    combination that meets both.
    """
    images = _checked(images)
    floors = _Floors.of(images, min_psnr, min_msssim)
    table = _Table.of(images)
    floors.check_reachable(table)
    relaxed = _relaxation(table, floors)
    found = []
    for start in _roundings(table, relaxed.x):
        choice = _trim(table, _repair(table, start, floors), floors, relaxed.lam, relaxed.mu)
        choice = _swap(table, choice, floors, relaxed.lam, relaxed.mu)
        found.append((int(table.at(choice)[0].sum()), choice))
    choice = min(found, key=lambda pair: pair[0])[1]
    return _allocation(images, choice, lam=relaxed.lam, mu=relaxed.mu)


def exact_allocation(
    images: Sequence[ImagePoints], budget: int, max_pairs: int | None = None
) -> Allocation:
    """The exact optimum of the budget problem (the least total SSE with total bytes <=
    budget; among equal SSE, the fewest bytes), for checking the heuristic.

    Dynamic programming over the images: the (total bytes, total SSE) pairs reachable by the
    images so far, kept only when no other pair has fewer-or-equal bytes and less SSE and
    only up to the budget. At most budget + 1 pairs survive each step, so the cost is
    pseudo-polynomial: O(n_images * points * min(budget, points^n_images) * log) time and
    memory; exact up to float rounding of SSE sums. max_pairs: raise TooLargeError as soon
    as more pairs than this survive a step (None: no limit).
    """
    images = _checked(images)
    budget = _checked_budget(images, budget)
    sizes, sses = np.zeros(1, np.int64), np.zeros(1)
    steps: list[tuple[np.ndarray, np.ndarray]] = []
    for image in images:
        b = np.array([p.nbytes for p in image.points], np.int64)
        d = np.array([p.sse for p in image.points], float)
        parent, point = _pareto_merge(sizes, sses, b, d, budget)
        if max_pairs is not None and len(parent) > max_pairs:
            raise TooLargeError(f"more than {max_pairs} (bytes, SSE) pairs to keep")
        sizes, sses = sizes[parent] + b[point], sses[parent] + d[point]
        steps.append((parent, point))
    at, choice = len(sizes) - 1, []  # the last pair has the least SSE
    for parent, point in reversed(steps):
        choice.append(int(point[at]))
        at = parent[at]
    return _allocation(images, np.array(choice[::-1]))


# --- inputs ------------------------------------------------------------------------------


def _checked(images: Sequence[ImagePoints]) -> list[ImagePoints]:
    """images as a list, after checking there is at least one and their names are unique."""
    images = list(images)
    if not images:
        raise ValueError("no images to allocate")
    if not all(isinstance(image, ImagePoints) for image in images):
        raise ValueError("images must be ImagePoints")
    names = [image.name for image in images]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"image names must be unique; repeated: {twice}")
    return images


def _checked_budget(images: list[ImagePoints], budget: int) -> int:
    """budget as an int, after checking it is a whole number of bytes the smallest points meet."""
    if isinstance(budget, bool) or not isinstance(budget, Integral) or budget < 0:
        raise ValueError(f"budget must be an integer number of bytes >= 0, got {budget!r}")
    smallest = sum(min(p.nbytes for p in image.points) for image in images)
    if smallest > budget:
        raise InfeasibleError(
            f"budget {budget} bytes is below {smallest}, the total with every image at its "
            "smallest point"
        )
    return int(budget)


@dataclass(frozen=True)
class _Table:
    """The points as arrays, images by rows, padded to the longest list of points.

    nbytes, sse, msssim: (n_images, max_points); padding has a size no budget reaches, SSE
    +inf and MS-SSIM NaN, so no move ever takes it. pixels: (n_images,).
    """

    nbytes: np.ndarray
    sse: np.ndarray
    msssim: np.ndarray
    pixels: np.ndarray

    @classmethod
    def of(cls, images: list[ImagePoints]) -> _Table:
        width = max(len(image.points) for image in images)
        shape = (len(images), width)
        nbytes = np.full(shape, np.iinfo(np.int64).max // 4, np.int64)
        sse, msssim = np.full(shape, np.inf), np.full(shape, np.nan)
        for i, image in enumerate(images):
            for j, p in enumerate(image.points):
                nbytes[i, j], sse[i, j] = p.nbytes, p.sse
                msssim[i, j] = np.nan if p.msssim is None else p.msssim
        pixels = np.array([image.pixels for image in images], float)
        return cls(nbytes, sse, msssim, pixels)

    @property
    def valid(self) -> np.ndarray:
        """(n_images, max_points) bool: the cells that hold a point."""
        return np.isfinite(self.sse)

    def at(self, choice: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(nbytes, sse, msssim) of the chosen points, each (n_images,)."""
        rows = np.arange(len(choice))
        return self.nbytes[rows, choice], self.sse[rows, choice], self.msssim[rows, choice]


def _allocation(
    images: list[ImagePoints], choice: np.ndarray, lam: float | None = None, mu: float | None = None
) -> Allocation:
    """The Allocation of `choice`, its totals summed exactly (integers, fsum)."""
    chosen = [image.points[int(j)] for image, j in zip(images, choice, strict=True)]
    total_sse = math.fsum(p.sse for p in chosen)
    samples = SAMPLES_PER_PIXEL * sum(image.pixels for image in images)
    has_msssim = all(p.msssim is not None for p in chosen)
    return Allocation(
        choice=tuple(int(j) for j in choice),
        keys=tuple(p.key for p in chosen),
        total_bytes=sum(int(p.nbytes) for p in chosen),
        total_sse=total_sse,
        psnr=aggregate_psnr(total_sse, samples),
        msssim=aggregate_msssim([p.msssim for p in chosen], [p.pixels for p in chosen])
        if has_msssim
        else None,
        lam=lam,
        mu=mu,
    )


# --- the budget: Lagrangian on the hulls, then greedy fill ---------------------------------


@dataclass(frozen=True)
class _Hull:
    """The lower convex hull of an image's (bytes, SSE) points, from its smallest point to
    its least SSE. index: the hull's points (indexes into the image's points), bytes rising;
    size: their bytes; efficiency: SSE saved per byte added along each segment, falling."""

    index: np.ndarray
    size: np.ndarray
    efficiency: np.ndarray

    @classmethod
    def of(cls, image: ImagePoints) -> _Hull:
        b = np.array([p.nbytes for p in image.points], float)
        d = np.array([p.sse for p in image.points], float)
        hull: list[int] = []
        for k in _pareto(b, d):
            while len(hull) >= 2 and not _below_chord(b, d, hull[-2], hull[-1], k):
                hull.pop()
            hull.append(k)
        index = np.array(hull)
        return cls(index, b[index], -np.diff(d[index]) / np.diff(b[index]))

    def rank(self, lam: float) -> int:
        """How many hull segments save more than lam SSE per byte: the position on the hull
        of the point minimising SSE + lam * bytes (ties to fewer bytes)."""
        return int(np.count_nonzero(self.efficiency > lam))

    def vertex(self, lam: float) -> int:
        """The image's point minimising SSE + lam * bytes, ties to fewer bytes."""
        return int(self.index[self.rank(lam)])


def _pareto(b: np.ndarray, d: np.ndarray) -> list[int]:
    """Indexes of the points that no other point beats (fewer-or-equal bytes and less SSE, or
    fewer bytes and equal SSE), bytes rising; equal points keep the first."""
    kept, best = [], math.inf
    for k in np.lexsort((d, b)):
        if d[k] < best:
            kept.append(int(k))
            best = d[k]
    return kept


def _below_chord(b: np.ndarray, d: np.ndarray, first: int, middle: int, last: int) -> bool:
    """Whether point `middle` lies strictly below the chord from `first` to `last` (bytes
    rising), i.e. it saves more SSE per byte before it than after it; cross-multiplied."""
    return (d[first] - d[middle]) * (b[last] - b[middle]) > (d[middle] - d[last]) * (
        b[middle] - b[first]
    )


def _bisect_lambda(hulls: list[_Hull], budget: int) -> float:
    """The smallest lam among 0 and the hull slopes whose Lagrangian choice fits the budget.

    The total size does not rise with lam and changes only at a slope, so bisecting over the
    sorted slopes is exact. The largest slope puts every image at its smallest point, which
    fits (checked before)."""
    slopes = np.unique(np.concatenate([np.zeros(1)] + [h.efficiency for h in hulls]))
    low, high = 0, len(slopes) - 1
    while low < high:
        mid = (low + high) // 2
        if _hull_bytes(hulls, slopes[mid]) <= budget:
            high = mid
        else:
            low = mid + 1
    return float(slopes[low])


def _hull_bytes(hulls: list[_Hull], lam: float) -> int:
    """Total bytes of the Lagrangian choice at lam."""
    return sum(int(h.size[h.rank(lam)]) for h in hulls)


def _greedy_fill(table: _Table, choice: np.ndarray, budget: int) -> np.ndarray:
    """Upgrades while bytes are left: each time the move (image i to its point j) that fits
    and saves the most SSE per byte added (a move adding no bytes first), ties to the larger
    saving. Every move lowers the total SSE, so the loop ends."""
    choice = choice.copy()
    while True:
        sizes, sses, _ = table.at(choice)
        added = table.nbytes - sizes[:, None]
        saved = sses[:, None] - table.sse
        allowed = (saved > 0) & (added <= budget - int(sizes.sum()))
        if not allowed.any():
            return choice
        rate = np.where(added > 0, saved / np.maximum(added, 1), np.inf)
        i, j = _best(allowed, rate, saved)
        choice[i] = j


def _best(allowed: np.ndarray, score: np.ndarray, tie: np.ndarray) -> tuple[int, int]:
    """(row, column) of the allowed cell with the highest score, then the highest tie."""
    cells = np.flatnonzero(allowed)
    top = cells[np.lexsort((tie.ravel()[cells], score.ravel()[cells]))[-1]]
    return tuple(int(v) for v in np.unravel_index(top, allowed.shape))


def _pareto_merge(
    sizes: np.ndarray, sses: np.ndarray, b: np.ndarray, d: np.ndarray, budget: int
) -> tuple[np.ndarray, np.ndarray]:
    """One step of the exact DP: every earlier pair (sizes, sses) plus every point (b, d) of
    the next image, kept when within the budget and not beaten. Returns (parent, point) of
    the kept pairs, bytes rising and SSE falling."""
    total_b = (sizes[:, None] + b[None, :]).ravel()
    total_d = (sses[:, None] + d[None, :]).ravel()
    fits = np.flatnonzero(total_b <= budget)
    order = fits[np.lexsort((total_d[fits], total_b[fits]))]
    ranked = total_d[order]
    better = np.concatenate([[True], ranked[1:] < np.minimum.accumulate(ranked)[:-1]])
    return np.divmod(order[better], len(b))


# --- the thresholds: LP relaxation, greedy repair, greedy trim -----------------------------


@dataclass(frozen=True)
class _Floors:
    """The transparent track's floors on one dataset. sse_cap: the largest total SSE whose
    aggregate PSNR meets min_psnr (the LP's row); samples, pixels: the dataset's counts."""

    min_psnr: float | None
    min_msssim: float | None
    samples: int
    pixels: int

    @classmethod
    def of(
        cls, images: list[ImagePoints], min_psnr: float | None, min_msssim: float | None
    ) -> _Floors:
        if min_psnr is None and min_msssim is None:
            raise ValueError("give min_psnr, min_msssim or both")
        if min_psnr is not None and not (isinstance(min_psnr, Real) and math.isfinite(min_psnr)):
            raise ValueError(f"min_psnr must be a finite number of dB, got {min_psnr!r}")
        if min_msssim is not None:
            if not (isinstance(min_msssim, Real) and math.isfinite(min_msssim) and min_msssim < 1):
                raise ValueError(f"min_msssim must be a number below 1, got {min_msssim!r}")
            missing = [im.name for im in images if any(p.msssim is None for p in im.points)]
            if missing:
                raise ValueError(f"min_msssim needs MS-SSIM on every point; missing in {missing}")
        pixels = sum(image.pixels for image in images)
        return cls(min_psnr, min_msssim, SAMPLES_PER_PIXEL * pixels, pixels)

    @property
    def sse_cap(self) -> float:
        return self.samples * PEAK * PEAK * 10.0 ** (-self.min_psnr / 10.0)

    def shortfall(self, total_sse: np.ndarray, weighted_msssim: np.ndarray) -> np.ndarray:
        """dB missing in PSNR plus dB missing in MS-SSIM (-10 log10(1 - x)), 0 when both
        floors are met; elementwise over totals (SSE, sum of pixels * MS-SSIM)."""
        short = np.zeros(np.shape(total_sse))
        with np.errstate(divide="ignore"):
            if self.min_psnr is not None:
                psnr = 10.0 * np.log10(PEAK * PEAK * self.samples / total_sse)
                short += np.maximum(self.min_psnr - psnr, 0.0)
            if self.min_msssim is not None:
                gap = -10.0 * np.log10(1.0 - self.min_msssim)
                reached = -10.0 * np.log10(np.maximum(1.0 - weighted_msssim / self.pixels, 0.0))
                short += np.maximum(gap - reached, 0.0)
        return short

    def met(self, table: _Table, choice: np.ndarray) -> bool:
        """Whether the choice meets both floors, measured as CLIC does (ctc.clic.rules)."""
        _, sses, msssims = table.at(choice)
        if self.min_psnr is not None:
            if aggregate_psnr(math.fsum(sses), self.samples) < self.min_psnr:
                return False
        if self.min_msssim is not None:
            pixels = [int(p) for p in table.pixels]
            if aggregate_msssim(msssims.tolist(), pixels) < self.min_msssim:
                return False
        return True

    def check_reachable(self, table: _Table) -> None:
        """InfeasibleError when a floor is missed even with each image at its best point for
        that metric (an exact test of each floor alone)."""
        rows = np.arange(len(table.pixels))
        if self.min_psnr is not None:
            best = aggregate_psnr(math.fsum(np.min(table.sse, axis=1)), self.samples)
            if best < self.min_psnr:
                raise InfeasibleError(
                    f"aggregate PSNR cannot reach {self.min_psnr} dB: at most {best:.4f} dB"
                )
        if self.min_msssim is not None:
            top = np.nanargmax(table.msssim, axis=1)
            best = float(np.sum(table.pixels * table.msssim[rows, top]) / self.pixels)
            if best < self.min_msssim:
                raise InfeasibleError(
                    f"aggregate MS-SSIM cannot reach {self.min_msssim}: at most {best:.6f}"
                )


@dataclass(frozen=True)
class _Relaxed:
    """The LP relaxation's solution: x (n_images, max_points), weights summing to 1 per
    image; lam (bytes per unit SSE) and mu (bytes per unit of pixels * MS-SSIM), its duals."""

    x: np.ndarray
    lam: float
    mu: float


def _relaxation(table: _Table, floors: _Floors) -> _Relaxed:
    """Solves min sum b x subject to the floors, sum_j x_ij = 1, x >= 0, with scipy's HiGHS.

    Rows are scaled to order one (SSE by its cap, MS-SSIM weights by the total pixels, bytes
    by the smallest total) and the duals scaled back."""
    valid = table.valid
    cells = np.flatnonzero(valid)
    rows_of = np.nonzero(valid)[0]
    byte_scale = float(max(np.min(np.where(valid, table.nbytes, np.inf), axis=1).sum(), 1.0))
    cost = table.nbytes.ravel()[cells] / byte_scale
    upper, limits = [], []
    if floors.min_psnr is not None:
        upper.append(table.sse.ravel()[cells] / floors.sse_cap)
        limits.append(1.0)
    if floors.min_msssim is not None:
        weight = (table.pixels[:, None] * table.msssim).ravel()[cells] / floors.pixels
        upper.append(-weight)
        limits.append(-floors.min_msssim)
    one_each = csr_array((np.ones(len(cells)), (rows_of, np.arange(len(cells)))))
    result = linprog(
        cost,
        A_ub=np.array(upper),
        b_ub=np.array(limits),
        A_eq=one_each,
        b_eq=np.ones(len(table.pixels)),
        bounds=(0, None),
        method="highs",
    )
    if result.status == 2:
        raise InfeasibleError("no combination meets both floors (the LP relaxation is infeasible)")
    if result.status != 0:
        raise RuntimeError(f"the LP relaxation failed: {result.message}")
    duals = list(-result.ineqlin.marginals * byte_scale)
    lam = duals.pop(0) / floors.sse_cap if floors.min_psnr is not None else 0.0
    mu = duals.pop(0) / floors.pixels if floors.min_msssim is not None else 0.0
    x = np.zeros(valid.shape)
    x.ravel()[cells] = result.x
    return _Relaxed(x, float(lam), float(mu))


def _roundings(table: _Table, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two integer starts from the relaxation: each image at the largest, then the smallest,
    of the points it uses (they differ only on the images the relaxation splits)."""
    used = x > _LP_TOLERANCE
    largest = np.argmax(np.where(used, table.nbytes, -1), axis=1)
    smallest = np.argmin(np.where(used, table.nbytes, np.iinfo(np.int64).max), axis=1)
    return largest, smallest


def _move_totals(table: _Table, choice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(total SSE, sum of pixels * MS-SSIM) after each move (image i to its point j), each
    (n_images, max_points); MS-SSIM missing counts as 0."""
    _, sses, msssims = table.at(choice)
    weighted = table.pixels * np.nan_to_num(msssims)
    all_weighted = table.pixels[:, None] * np.nan_to_num(table.msssim)
    total_sse = sses.sum() - sses[:, None] + table.sse
    total_weighted = weighted.sum() - weighted[:, None] + all_weighted
    return total_sse, total_weighted


def _repair(table: _Table, choice: np.ndarray, floors: _Floors) -> np.ndarray:
    """Moves until both floors are met: each time the one that removes the most shortfall
    (dB) per byte added (one adding no bytes first), ties to the larger removal."""
    choice = choice.copy()
    while not floors.met(table, choice):
        after = floors.shortfall(*_move_totals(table, choice))
        removed = after[np.arange(len(choice)), choice][:, None] - after  # 0 for staying put
        added = table.nbytes - table.at(choice)[0][:, None]
        allowed = table.valid & (removed > 0)
        if not allowed.any():
            raise InfeasibleError("no combination found that meets both floors (greedy repair)")
        rate = np.where(added > 0, removed / np.maximum(added, 1), np.inf)
        i, j = _best(allowed, rate, removed)
        choice[i] = j
    return choice


def _trim(table: _Table, choice: np.ndarray, floors: _Floors, lam: float, mu: float) -> np.ndarray:
    """Moves to smaller points while both floors hold: each time the one that saves the most
    bytes per unit of priced loss, lam * SSE added + mu * pixels * MS-SSIM lost (a move that
    loses nothing first), ties to the larger saving. Each move is checked as CLIC measures
    before it is taken; every move saves bytes, so the loop ends."""
    choice = choice.copy()
    refused = np.zeros(table.sse.shape, bool)
    while True:
        sizes, sses, msssims = table.at(choice)
        total_sse, total_weighted = _move_totals(table, choice)
        saved = sizes[:, None] - table.nbytes
        sse_added = np.where(table.valid, total_sse - sses.sum(), 0.0)
        weight_lost = np.sum(table.pixels * np.nan_to_num(msssims)) - total_weighted
        loss = lam * sse_added + mu * weight_lost
        allowed = (
            table.valid
            & (saved > 0)
            & ~refused
            & (floors.shortfall(total_sse, total_weighted) == 0)
        )
        if not allowed.any():
            return choice
        rate = np.where(loss > 0, saved / np.where(loss > 0, loss, 1.0), np.inf)
        i, j = _best(allowed, rate, saved)
        trial = choice.copy()
        trial[i] = j
        if floors.met(table, trial):
            choice, refused = trial, np.zeros_like(refused)
        else:
            refused[i, j] = True


def _swap(table: _Table, choice: np.ndarray, floors: _Floors, lam: float, mu: float) -> np.ndarray:
    """Pairs of moves that save bytes together while both floors hold: one image up to its
    next larger point, another down to its next smaller one (what a trim of single moves
    cannot reach). Each time the pair that saves the most bytes, checked as CLIC measures,
    then a trim; every pair saves bytes, so the loop ends."""
    choice = choice.copy()
    refused = np.zeros((len(choice), len(choice)), bool)
    while True:
        (up, has_up), (down, has_down) = (
            _next_point(table, choice, 1),
            _next_point(table, choice, -1),
        )
        rows = np.arange(len(choice))
        sizes, sses, msssims = table.at(choice)
        weighted = table.pixels * np.nan_to_num(msssims)
        up_weighted = table.pixels * np.nan_to_num(table.msssim[rows, up])
        down_weighted = table.pixels * np.nan_to_num(table.msssim[rows, down])
        saved = (sizes - table.nbytes[rows, down])[None, :] - (table.nbytes[rows, up] - sizes)[
            :, None
        ]
        total_sse = (
            sses.sum()
            + (table.sse[rows, up] - sses)[:, None]
            + (table.sse[rows, down] - sses)[None, :]
        )
        total_weighted = (
            weighted.sum() + (up_weighted - weighted)[:, None] + (down_weighted - weighted)[None, :]
        )
        allowed = (
            has_up[:, None]
            & has_down[None, :]
            & (rows[:, None] != rows[None, :])
            & (saved > 0)
            & ~refused
            & (floors.shortfall(total_sse, total_weighted) == 0)
        )
        if not allowed.any():
            return choice
        raised, lowered = np.unravel_index(np.argmax(np.where(allowed, saved, -1)), allowed.shape)
        trial = choice.copy()
        trial[raised], trial[lowered] = up[raised], down[lowered]
        if floors.met(table, trial):
            choice, refused = _trim(table, trial, floors, lam, mu), np.zeros_like(refused)
        else:
            refused[raised, lowered] = True


def _next_point(table: _Table, choice: np.ndarray, direction: int) -> tuple[np.ndarray, np.ndarray]:
    """Each image's point with the next larger (direction 1) or smaller (-1) size than its
    chosen one: (index, whether there is one), each (n_images,)."""
    sizes = table.at(choice)[0][:, None]
    ahead = table.valid & (direction * (table.nbytes - sizes) > 0)
    distance = np.where(ahead, direction * (table.nbytes - sizes), np.iinfo(np.int64).max)
    return np.argmin(distance, axis=1), ahead.any(axis=1)
