"""Mask schedules of a masked model: joint, or progressive prune-and-grow over the rate points.

Joint (the default): every step trains one rate point in turn, and the shared weights learn from
all of them. During the first `grow_fraction` of the run the nested masks are re-selected
MASK_UPDATES times at the configured densities (select_nested_masks), then they stay fixed.

Both schedules rank blocks by activation-aware saliency: the L2 norm of the block's weights, each
scaled by the RMS of its input channel over the recent training steps (InputScales,
block_norms). Ranked by weight norm alone, pruning wrecks a trained model's synthesis (measured
in docs/training.md).

Progressive: the run is cut into one phase per rate point, from the lowest rate to the highest.
Phase k:
1. grow: rate point k may use every block (those of rate point k - 1 stay frozen, the others are
   trained for rate point k);
2. prune, after `grow_fraction` of the phase: of the blocks not frozen, those with the largest L2
   norm are kept until rate point k uses `densities[k]` of all blocks;
3. fine-tune the kept blocks and rate point k's independent parameters to the end of the phase.
Rate point k's weights are then frozen, so the later phases leave it exactly as trained
(nested masks, as in Jiang et al., WG1 m89074, 2020; the growing step follows their PnG).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from nic.models import MaskedMultiRateHyperprior, MeanScaleHyperprior
from nic.models.masked import block_norms, layer_key

SCHEDULES = ("joint", "progressive")
MASK_UPDATES = 20
"""Joint schedule: times the masks are re-selected during the first grow_fraction of the run."""


def mask_update_due(step: int, steps: int, grow_fraction: float) -> bool:
    """Joint schedule: whether the masks are re-selected before step `step` of a `steps`-long
    run: MASK_UPDATES times (fewer in a run too short), evenly over the first grow_fraction of it,
    the first one interval in, so that every update ranks blocks by the input scales recorded
    since the one before (a run that starts from a masked model keeps its masks until then)."""
    until = max(1, int(grow_fraction * steps))
    count = min(MASK_UPDATES, until)
    return step in {i * until // count for i in range(1, count + 1)}


class InputScales:
    """Mean square of each masked layer's input channels over the training steps since the last
    reset, recorded by forward hooks on the structure every rate point runs through (so rate
    points weigh in by how often they trained). Kept in checkpoints."""

    def __init__(self, net: MaskedMultiRateHyperprior) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}
        for layer in net.masked_layers:
            net.template.get_submodule(layer).register_forward_hook(self._recorder(layer))

    def _recorder(self, layer: str):
        def record(module, inputs, output) -> None:
            square = inputs[0].detach().float().pow(2).mean(dim=(0, 2, 3))
            self._sums[layer] = self._sums.get(layer, 0) + square
            # A tensor, not an int: torch.compile would recompile for every new int value.
            self._counts[layer] = self._counts.get(layer, 0) + square.new_ones(())

        return record

    def rms(self, layer: str) -> torch.Tensor | None:
        """Root mean square of each input channel of `layer` (None before any step)."""
        if layer not in self._sums:
            return None
        return (self._sums[layer] / self._counts[layer]).sqrt()

    def reset(self) -> None:
        self._sums.clear()
        self._counts.clear()

    def state_dict(self) -> dict:
        return {"sums": dict(self._sums), "counts": dict(self._counts)}

    def load_state_dict(self, state: dict) -> None:
        self._sums, self._counts = dict(state["sums"]), dict(state["counts"])


def block_saliency(
    net: MaskedMultiRateHyperprior, layer: str, scales: InputScales | None
) -> torch.Tensor:
    """(out blocks, in blocks) saliency of a shared layer's blocks: activation-aware where input
    scales have been recorded, the plain weight norm otherwise."""
    rms = scales.rms(layer) if scales is not None else None
    return block_norms(
        net.shared[layer_key(layer)], net.transposed[layer], net.config.mask_block, rms
    )


@torch.no_grad()
def select_nested_masks(net: MaskedMultiRateHyperprior, scales: InputScales | None = None) -> None:
    """Joint schedule: rank each layer's blocks by saliency once; rate point k keeps the top
    densities[k] of them, so the masks are nested. Blocks that have grown more salient since the
    last selection come back in (grow), weak ones drop out (prune)."""
    for layer in net.masked_layers:
        mask = net.mask(layer)
        order = torch.argsort(block_saliency(net, layer, scales).flatten(), descending=True)
        for rate, density in enumerate(net.config.densities):
            kept = torch.zeros(order.numel(), dtype=torch.bool, device=mask.device)
            kept[order[: round(density * order.numel())]] = True
            mask[rate] = kept.view_as(mask[rate])


@dataclass(frozen=True)
class Phase:
    """Steps [start, end) train rate point `rate`; the mask is pruned at step `prune_at`."""

    rate: int
    start: int
    prune_at: int
    end: int

    def local_step(self, step: int) -> int:
        return step - self.start

    @property
    def length(self) -> int:
        return self.end - self.start


def phase_at(step: int, steps: int, rate_points: int, grow_fraction: float) -> Phase:
    """The phase that step `step` of a `steps`-long run belongs to (equal-length phases)."""
    length = math.ceil(steps / rate_points)
    rate = min(step // length, rate_points - 1)
    start = rate * length
    end = steps if rate == rate_points - 1 else start + length
    return Phase(rate, start, start + round(grow_fraction * (end - start)), end)


def grow(net: MaskedMultiRateHyperprior, rate: int) -> None:
    """Let rate point `rate` use every block."""
    for layer in net.masked_layers:
        net.mask(layer)[rate] = True


@torch.no_grad()
def prune(net: MaskedMultiRateHyperprior, rate: int, scales: InputScales | None = None) -> None:
    """Keep the frozen blocks of rate point rate - 1 and the most salient of the others, so that
    rate point `rate` uses its configured density of each layer's blocks."""
    density = net.config.densities[rate]
    for layer in net.masked_layers:
        mask = net.mask(layer)
        frozen = mask[rate - 1] if rate > 0 else torch.zeros_like(mask[rate])
        keep = max(round(density * frozen.numel()), int(frozen.sum()))
        norms = torch.where(frozen, torch.inf, block_saliency(net, layer, scales)).flatten()
        kept = torch.zeros_like(norms, dtype=torch.bool)
        kept[torch.topk(norms, keep).indices] = True
        mask[rate] = kept.view_as(mask[rate])


def freeze_gradients(net: MaskedMultiRateHyperprior, rate: int) -> None:
    """Zero the gradients of the shared weights that earlier rate points use."""
    if rate == 0:
        return
    for layer in net.masked_layers:
        weight = net.shared[layer_key(layer)]
        if weight.grad is not None:
            weight.grad.mul_(1 - net.expanded_mask(layer, rate - 1))


def phase_parameters(net: MaskedMultiRateHyperprior, rate: int) -> list[torch.nn.Parameter]:
    """What phase `rate` trains: the shared weights (gradients masked) and its own parameters."""
    return [*net.shared.values(), *net.independent[rate].values()]


def _log_gain_at(source: MeanScaleHyperprior, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The source's log-gain rows interpolated (or extrapolated) linearly in log lambda."""
    logs = np.log(np.asarray(source.config.lambdas))
    if len(logs) == 1:
        return source.log_gain[0].detach(), source.log_inverse_gain[0].detach()
    i = int(np.clip(np.searchsorted(logs, np.log(lam)) - 1, 0, len(logs) - 2))
    t = float((np.log(lam) - logs[i]) / (logs[i + 1] - logs[i]))

    def mix(table: torch.Tensor) -> torch.Tensor:
        return ((1 - t) * table[i] + t * table[i + 1]).detach()

    return mix(source.log_gain), mix(source.log_inverse_gain)


@torch.no_grad()
def initialize_from(
    net: torch.nn.Module, source: MeanScaleHyperprior | MaskedMultiRateHyperprior
) -> None:
    """Start a model (masked or not) from a trained gain model of the same N and M: its weights
    everywhere, and at each lambda the gains the source has there (linear in log lambda,
    extrapolated beyond its lambdas). A masked source of the same config is copied whole."""
    if isinstance(source, MaskedMultiRateHyperprior):
        if not isinstance(net, MaskedMultiRateHyperprior) or net.config != source.config:
            raise ValueError("a masked model initializes only a masked model of its config")
        net.load_state_dict(source.state_dict())
        return
    if (source.config.N, source.config.M) != (net.config.N, net.config.M):
        raise ValueError(
            f"cannot initialize N={net.config.N}/M={net.config.M} from "
            f"N={source.config.N}/M={source.config.M}"
        )
    weights = source.state_dict()
    gains = [_log_gain_at(source, lam) for lam in net.config.lambdas]
    if isinstance(net, MaskedMultiRateHyperprior):
        for layer in net.masked_layers:
            net.shared[layer_key(layer)].copy_(weights[f"{layer}.weight"])
        for rate, params in enumerate(net.independent):
            for name in net.independent_names:
                if name.startswith("log_"):
                    value = gains[rate][0 if name == "log_gain" else 1][None]
                else:
                    value = weights[name]
                params[layer_key(name)].copy_(value)
        return
    net.load_state_dict(
        {
            **weights,
            "log_gain": torch.stack([g for g, _ in gains]),
            "log_inverse_gain": torch.stack([g for _, g in gains]),
        }
    )
