"""Mean-scale hyperprior model with gain-vector rate points.

Transforms and entropy model follow Minnen, Ballé, Toderici, "Joint autoregressive and
hierarchical priors for learned image compression" (NeurIPS 2018), without the autoregressive
context. Each rate point k owns a gain vector g_k and an inverse gain vector g'_k over the latent
channels (Cui et al., "Asymmetric gained deep image compression with continuous rate
adaptation", CVPR 2021): the latent is scaled by g_k before quantization and by g'_k before
synthesis, so one set of transform weights serves every rate point.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import torch
from torch import nn

from nic.entropy import FactorizedPrior, gaussian_likelihood
from nic.nn import GDN

DOWNSAMPLING = 64
"""Total stride from pixels to hyper-latent: inputs are padded to a multiple of this."""


def _conv(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2)


def _deconv(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(
        cin, cout, kernel, stride=stride, padding=kernel // 2, output_padding=stride - 1
    )


ENTROPY_MODELS = ("hyperprior", "elic")
"""HyperpriorConfig.entropy_model's values (nic.models.model_class maps them to classes)."""
ELIC_GROUPS = (16, 16, 32, 64)
"""ELIC's first channel groups (He et al., CVPR 2022); the last group takes the rest of M."""
MAX_GROUPS = 16
"""The most channel groups a config may describe (2 coding steps each)."""


def hyper_synthesis(n: int, width: int, out: int) -> nn.Sequential:
    """h_s: the hyper-latent's N channels up 4x, through `width` and 3/2 `width` channels, to
    `out` (Minnen et al. 2018's mean-scale hyper-synthesis; 2M for a mean and scale per latent)."""
    return nn.Sequential(
        _deconv(n, width),
        nn.LeakyReLU(inplace=True),
        _deconv(width, width * 3 // 2),
        nn.LeakyReLU(inplace=True),
        _conv(width * 3 // 2, out, 3, 1),
    )


@dataclass(frozen=True)
class HyperpriorConfig:
    """Architecture and rate points; stored in every model file."""

    N: int = 128
    M: int = 192
    lambdas: tuple[float, ...] = field(
        default=(0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)
    )
    distortion: str = "mse"
    mask_block: tuple[int, int] | None = None
    """Output x input channels of one mask block; None: the gain model (no masks)."""
    densities: tuple[float, ...] = ()
    """Masked models: the fraction of blocks each rate point uses, non-decreasing."""
    entropy_model: str = "hyperprior"
    """"hyperprior": the mean-scale hyperprior (MeanScaleHyperprior); "elic": uneven channel
    groups, each coded in two checkerboard halves with a channel and a spatial context
    (nic/models/elic.py, ElicHyperprior)."""
    groups: tuple[int, ...] = ()
    """ELIC: the channel group sizes in coding order, summing to M; () for ELIC's
    16, 16, 32, 64, M - 128 (channel_groups)."""

    def __post_init__(self) -> None:
        if self.entropy_model not in ENTROPY_MODELS:
            raise ValueError(
                f"entropy_model must be one of {', '.join(ENTROPY_MODELS)}, "
                f"not {self.entropy_model!r}"
            )
        if self.entropy_model == "hyperprior" and self.groups:
            raise ValueError("channel groups are for entropy_model: elic only")
        if self.entropy_model == "elic":
            if not self.groups and self.M <= 128:
                raise ValueError(
                    f"model.groups is needed for ELIC with M={self.M}: the default groups "
                    "16, 16, 32, 64, M - 128 need M > 128"
                )
            groups = self.channel_groups
            if not 1 <= len(groups) <= MAX_GROUPS or min(groups) < 1 or sum(groups) != self.M:
                raise ValueError(
                    f"ELIC channel groups {list(groups)} must be 1 to {MAX_GROUPS} sizes >= 1 "
                    f"summing to M={self.M}"
                )

    def to_dict(self) -> dict:
        d = {**asdict(self), "lambdas": list(self.lambdas)}
        if self.mask_block is None:  # gain-model files keep their original config
            del d["mask_block"], d["densities"]
        else:
            d.update(mask_block=list(self.mask_block), densities=list(self.densities))
        if self.entropy_model == "hyperprior":  # so do hyperprior files
            del d["entropy_model"], d["groups"]
        else:
            d["groups"] = list(self.groups)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> HyperpriorConfig:
        block = d.get("mask_block")
        return cls(
            **{
                **d,
                "lambdas": tuple(float(x) for x in d["lambdas"]),
                "mask_block": tuple(int(b) for b in block) if block else None,
                "densities": tuple(float(x) for x in d.get("densities", ())),
                "groups": tuple(int(g) for g in d.get("groups", ())),
            }
        )

    @property
    def channel_groups(self) -> tuple[int, ...]:
        """ELIC: the channel group sizes, `groups` or ELIC's uneven default (He et al. 2022)."""
        if self.groups:
            return self.groups
        return (*ELIC_GROUPS, self.M - sum(ELIC_GROUPS))

    @property
    def masked(self) -> bool:
        return self.mask_block is not None

    def gain_model(self, lambdas: tuple[float, ...] | None = None) -> HyperpriorConfig:
        """This architecture as a gain model (no masks), with `lambdas` (default: its own)."""
        return replace(
            self,
            lambdas=self.lambdas if lambdas is None else lambdas,
            mask_block=None,
            densities=(),
        )


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Rounding with a straight-through gradient."""
    return x + (torch.round(x) - x).detach()


class MeanScaleHyperprior(nn.Module):
    """g_a/g_s with GDN, h_a/h_s predicting the Gaussian mean and scale of every latent."""

    def __init__(self, config: HyperpriorConfig) -> None:
        super().__init__()
        self.config = config
        n, m = config.N, config.M
        self.g_a = nn.Sequential(
            _conv(3, n),
            GDN(n, inplace=True),
            _conv(n, n),
            GDN(n, inplace=True),
            _conv(n, n),
            GDN(n, inplace=True),
            _conv(n, m),
        )
        self.g_s = nn.Sequential(
            _deconv(m, n),
            GDN(n, inverse=True, inplace=True),
            _deconv(n, n),
            GDN(n, inverse=True, inplace=True),
            _deconv(n, n),
            GDN(n, inverse=True, inplace=True),
            _deconv(n, 3),
        )
        self.h_a = nn.Sequential(
            _conv(m, n, 3, 1),
            nn.LeakyReLU(inplace=True),
            _conv(n, n),
            nn.LeakyReLU(inplace=True),
            _conv(n, n),
        )
        self.h_s = hyper_synthesis(n, m, 2 * m)
        self.hyper_prior = FactorizedPrior(n)
        # Gain ~ sqrt(lambda): the MSE-optimal quantizer step shrinks like 1/sqrt(lambda).
        lam = torch.tensor(config.lambdas, dtype=torch.float32)
        log_gain = 0.5 * torch.log(lam / lam.log().mean().exp())
        self.log_gain = nn.Parameter(log_gain[:, None].repeat(1, m))
        self.log_inverse_gain = nn.Parameter(-log_gain[:, None].repeat(1, m))

    @property
    def num_rate_points(self) -> int:
        return len(self.config.lambdas)

    @property
    def device(self) -> torch.device:
        return self.log_gain.device

    def gains(self, rate: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        """(gain, inverse gain) shaped (B or 1, M, 1, 1) for broadcasting over latents.

        `rate` is a tensor of integer rate points (training), or a rate position in
        [0, K - 1]: between rate points k and k + 1 the log-gains are interpolated linearly
        (Cui et al. 2021, continuous rate adaptation); whole positions give the rate points'
        own gains exactly.
        """
        if isinstance(rate, torch.Tensor):
            k = rate.to(self.log_gain.device).reshape(-1)
            return (
                self.log_gain[k].exp()[:, :, None, None],
                self.log_inverse_gain[k].exp()[:, :, None, None],
            )
        last = self.num_rate_points - 1
        if not 0 <= rate <= last:
            raise ValueError(f"rate position {rate} outside 0..{last}")
        k = min(int(rate), last - 1) if last > 0 else 0
        a = rate - k

        def mix(table: torch.Tensor) -> torch.Tensor:
            value = table[k] if a == 0 else (1 - a) * table[k] + a * table[k + 1]
            return value.exp()[None, :, None, None]

        return mix(self.log_gain), mix(self.log_inverse_gain)

    def analyze(self, x: torch.Tensor, rate: torch.Tensor | float) -> torch.Tensor:
        """Image in [0, 1] -> gain-scaled latent y (before quantization)."""
        gain, _ = self.gains(rate)
        return self.g_a(x).float() * gain  # float32 even under bf16 autocast: it is rounded

    def entropy_parameters(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantized hyper-latent -> (mean, scale) of the latent's Gaussian."""
        mean, scale = self.h_s(z_hat).float().chunk(2, dim=1)
        return mean, scale.abs()

    def float_estimate(self, y: torch.Tensor) -> tuple[float, torch.Tensor]:
        """(estimated bits, decoded latent y_hat) of a gain-scaled latent (1, M, H, W) through
        the float network alone: z = round(h_a(y)), y_hat = round(y - mean) + mean, and -log2
        of the likelihoods of the rounded residuals and of z. The rate the model was trained to
        predict, without the integer path or entropy coding (rate control searches on it)."""
        z = torch.round(self.h_a(y))
        mean, scale = self.entropy_parameters(z)
        residual = torch.round(y - mean)
        return self.likelihood_bits(residual, scale, z), residual + mean

    def likelihood_bits(
        self, residual: torch.Tensor, scale: torch.Tensor, z: torch.Tensor
    ) -> float:
        """-log2 of the float likelihoods of rounded latent residuals (under their Gaussian
        scales) and of a rounded hyper-latent z: the bits float_estimate reports."""
        y_bits = -torch.log2(gaussian_likelihood(residual, scale)).sum()
        z_bits = -torch.log2(self.hyper_prior.likelihood(z)).sum()
        return float(y_bits + z_bits)

    def synthesize(self, y_hat: torch.Tensor, rate: torch.Tensor | float) -> torch.Tensor:
        """Quantized latent -> reconstruction (not clamped).

        Under torch.inference_mode on one CPU thread (how nic.codec decodes), g_s runs on a
        channels-last copy: oneDNN writes a transposed convolution of a channels-last tensor
        straight into its output, where it computes one of a contiguous tensor in its own
        blocked layout and then copies it out (a quarter of g_s's time on 768 x 512). On one
        thread the values are the same bit for bit (tests/nic/test_inference_paths.py); on
        several, oneDNN splits the two layouts' work differently and a value may move by one
        rounding, so it keeps the contiguous layout there. The output is contiguous."""
        _, inverse_gain = self.gains(rate)
        y = y_hat * inverse_gain
        if (
            torch.is_inference_mode_enabled()
            and y.device.type == "cpu"
            and torch.get_num_threads() == 1
        ):
            y = y.contiguous(memory_format=torch.channels_last)
        return self.g_s(y).float().contiguous()

    def forward(self, x: torch.Tensor, rate_point: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training pass: noise for the likelihoods, straight-through rounding for the decoder."""
        y = self.analyze(x, rate_point)
        z = self.h_a(y)
        z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5)
        mean, scale = self.entropy_parameters(z_noisy)
        residual = y - mean
        noisy = residual + torch.empty_like(residual).uniform_(-0.5, 0.5)
        y_hat = ste_round(residual) + mean
        return {
            "x_hat": self.synthesize(y_hat, rate_point),
            "y_likelihoods": gaussian_likelihood(noisy, scale),
            "z_likelihoods": self.hyper_prior.likelihood(z_noisy),
        }


def rate_bits(likelihoods: torch.Tensor) -> torch.Tensor:
    """-log2 of the likelihoods, summed per batch item."""
    return -torch.log2(likelihoods).flatten(1).sum(1)
