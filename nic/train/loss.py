"""Rate-distortion loss L = lambda * D + R_main + R_hyper (Ballé et al., ICLR 2018), and the
per-rate-point balance of a multi-rate model's losses.

Rates are in bits per pixel. Two distortions D:

- "mse" (default): the MSE on the 0..255 scale, as in CompressAI's lambda table, so the usual
  lambdas (0.0018 ... 0.18) map to roughly 0.1 ... 2 bpp on Kodak.
- "ms-ssim": 1 - MS-SSIM (RGB, data range 1; nic/train/msssim.py). Its lambda scale differs
  from MSE's: CompressAI's MS-SSIM lambdas for roughly the same rates are 2.4 ... 220
  (2.40, 4.58, 8.73, 16.64, 31.73, 60.50, 115.37, 220.00). Patches need sides >= 161.
"""

from __future__ import annotations

import torch

from nic.models import rate_bits
from nic.train.msssim import ms_ssim

DISTORTIONS = ("mse", "ms-ssim")


def rd_terms(
    out: dict[str, torch.Tensor],
    x: torch.Tensor,
    lambdas: torch.Tensor,
    distortion: str = "mse",
) -> dict[str, torch.Tensor]:
    """Per-item loss and its parts: each a (B,) tensor for a (B, 3, H, W) batch `x`.

    `out` is a model's training pass over `x`, `lambdas` holds one lambda per item. Returns loss
    (differentiable), bpp (bits per pixel of the latents and hyper-latents) and mse (0..1 scale,
    for the PSNR log), the last two detached; with "ms-ssim" also ms_ssim (detached).
    Raises ValueError for an unknown distortion.
    """
    if distortion not in DISTORTIONS:
        raise ValueError(f"unknown distortion {distortion!r}; expected 'mse' or 'ms-ssim'")
    pixels = x.shape[2] * x.shape[3]
    bpp_y = rate_bits(out["y_likelihoods"]) / pixels
    bpp_z = rate_bits(out["z_likelihoods"]) / pixels
    mse = ((out["x_hat"] - x) ** 2).flatten(1).mean(1)
    terms: dict[str, torch.Tensor] = {}
    if distortion == "mse":
        loss = lambdas * (255.0**2) * mse + bpp_y + bpp_z
    else:
        quality = ms_ssim(out["x_hat"], x, data_range=1.0)
        loss = lambdas * (1.0 - quality) + bpp_y + bpp_z
        terms["ms_ssim"] = quality.detach()
    return {"loss": loss, "bpp": (bpp_y + bpp_z).detach(), "mse": mse.detach(), **terms}


def rd_loss(
    out: dict[str, torch.Tensor],
    x: torch.Tensor,
    lambdas: torch.Tensor,
    distortion: str = "mse",
) -> dict[str, torch.Tensor]:
    """Per-batch mean of the loss, with its parts for logging; lambdas holds one per item.

    Always returns loss, bpp and mse (0..1 scale, for the PSNR log); with "ms-ssim" also ms_ssim.
    """
    terms = rd_terms(out, x, lambdas, distortion)
    return {name: value.mean() for name, value in terms.items()}


RATE_BALANCES = ("none", "loss", "gradient")
RATE_BALANCE_DECAY = 0.99
"""Decay of the running means per observation of a rate point (about the last 100 count)."""


class RateBalance:
    """Per-rate-point loss weights, so that rate points whose losses and gradients are small
    (low lambdas) are not starved by the others that share the weights and the Adam state.

    Rate point k's loss is divided by a running mean s_k of its own scale, an exponential moving
    average (decay RATE_BALANCE_DECAY per observation of k, with Adam's bias correction: Kingma
    & Ba, ICLR 2015):

    - "loss": s_k is k's loss, so training minimises sum_k L_k / s_k, whose gradient is that of
      sum_k log L_k: every rate point counts by its relative improvement (the weighting that
      uncertainty weighting converges to: Kendall, Gal & Cipolla, CVPR 2018). Works per batch
      item, for batches that mix rate points.
    - "gradient": s_k is the norm of the gradient of k's loss over all trained parameters, so
      each step's gradient has about unit norm whatever its rate point: GradNorm's balance of
      equal gradient norms (Chen et al., ICML 2018, asymmetry alpha = 0) with the norms measured
      rather than learned. Needs every step to train one rate point (record_gradient).

    A rate point not observed yet has weight 1. The state is a pair of (K,) float32 tensors on
    the weights' device and is kept in checkpoints (state_dict).
    """

    def __init__(self, mode: str, rate_points: int, device: torch.device | str = "cpu") -> None:
        if mode not in RATE_BALANCES[1:]:
            raise ValueError(f"rate balance must be one of {RATE_BALANCES[1:]}, not {mode!r}")
        self.mode = mode
        self.average = torch.zeros(rate_points, device=device)
        self.decayed = torch.ones(rate_points, device=device)
        """decay ** (observations of each rate point): 1 - decayed corrects the bias."""

    def weights(self) -> torch.Tensor:
        """(K,) weight of each rate point's loss: 1 / s_k, or 1 before k was observed."""
        observed = self.decayed < 1
        scale = self.average / torch.where(observed, 1 - self.decayed, 1)
        return torch.where(observed & (scale > 0), 1 / scale, 1)

    def objective(self, losses: torch.Tensor, rate: torch.Tensor | int) -> torch.Tensor:
        """The loss to minimise: the mean of the (B,) per-item `losses`, each divided by its rate
        point's running scale (`rate`: a (B,) tensor of rate points, or one int for the whole
        batch). In "loss" mode the losses are observed first, so the batch counts in its scale."""
        if isinstance(rate, int):
            rate = torch.full(losses.shape, rate, device=losses.device)
        if self.mode == "loss":
            detached = losses.detach().float()
            sums = torch.zeros_like(self.average).index_add_(0, rate, detached)
            counts = torch.zeros_like(self.average).index_add_(0, rate, torch.ones_like(detached))
            self._observe(counts > 0, sums / counts.clamp(min=1))
        return (losses * self.weights()[rate]).mean()

    def record_gradient(self, rate: int, weighted_norm: torch.Tensor) -> None:
        """Observe, in "gradient" mode, the norm of rate point `rate`'s gradient, given the norm
        of the weighted gradient (what clip_grad_norm_ returns for objective()'s gradient)."""
        if self.mode != "gradient":
            return
        norm = weighted_norm.detach().float() / self.weights()[rate]
        seen = torch.arange(len(self.average), device=self.average.device) == rate
        self._observe(seen & torch.isfinite(norm), norm.expand_as(self.average))

    def _observe(self, seen: torch.Tensor, values: torch.Tensor) -> None:
        decay = RATE_BALANCE_DECAY
        values = torch.where(seen, values, 0)
        self.average = torch.where(seen, decay * self.average + (1 - decay) * values, self.average)
        self.decayed = torch.where(seen, decay * self.decayed, self.decayed)

    def state_dict(self) -> dict:
        return {"mode": self.mode, "average": self.average, "decayed": self.decayed}

    def load_state_dict(self, state: dict) -> None:
        """Raises ValueError for the state of another mode or number of rate points."""
        if state["mode"] != self.mode or state["average"].shape != self.average.shape:
            raise ValueError(f"rate balance state of {state['mode']!r} does not fit {self.mode!r}")
        self.average = state["average"].to(self.average)
        self.decayed = state["decayed"].to(self.decayed)
