"""Variable-rate masked hyperprior: shared weights, a binary block mask and a few independent
parameters per rate point.

After Jiang et al., "Multi-rate learning-based image coding with micro-structured masks"
(ISO/IEC JTC1 SC29 WG1 m89074, 2020) and its prune-and-grow training (CVPR workshops 2021).
The convolutions inside the transforms share one weight tensor across rate points; rate point k
uses it through a binary mask over micro-structured blocks (a block is `mask_block` output x input
channels over the whole kernel). Everything else is independent per rate point: the layers facing
RGB, every bias, GDN/IGDN, the hyper-latent's factorized prior and the quantization gain.

The masks are nested (rate point k uses every block of k - 1 and more), as both training
schedules of nic/train/prune_and_grow.py produce them.

The network of one rate point is an ordinary MeanScaleHyperprior (`rate_point_network`), so the
codec, the integer entropy path and the rate estimate are the same for both model kinds.

The template, the network every rate point runs through, is the gain-model class of the
config's entropy model (`model_class`: MeanScaleHyperprior, or ElicHyperprior, whose context
and aggregation convolutions are then shared and masked too; `masked_layers`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from nic.models.entropy_models import model_class
from nic.models.hyperprior import HyperpriorConfig, MeanScaleHyperprior

MASKED_LAYERS = (
    "g_a.2",
    "g_a.4",
    "g_a.6",
    "g_s.0",
    "g_s.2",
    "g_s.4",
    "h_a.0",
    "h_a.2",
    "h_a.4",
    "h_s.0",
    "h_s.2",
    "h_s.4",
)
"""A MeanScaleHyperprior template's convolutions whose weights are shared and masked (what
masked_layers gives for it); the first layer of g_a and the last of g_s face RGB and are
independent."""


def masked_layers(template: nn.Module) -> tuple[str, ...]:
    """Every convolution of a gain-model network, in module order, except the two that face RGB
    (the first of g_a and the last of g_s): the layers a masked model shares and masks."""
    convs = [
        name
        for name, module in template.named_modules()
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d))
    ]
    rgb = {"g_a.0", f"g_s.{len(template.g_s) - 1}"}
    return tuple(name for name in convs if name not in rgb)


def layer_key(layer: str) -> str:
    return layer.replace(".", "_")


def _block_grid(weight: torch.Tensor, transposed: bool, block: tuple[int, int]) -> tuple[int, int]:
    out_ch, in_ch = (weight.shape[1], weight.shape[0]) if transposed else weight.shape[:2]
    bo, bi = block
    if out_ch % bo or in_ch % bi:
        raise ValueError(f"mask block {bo}x{bi} does not divide a {out_ch}x{in_ch} convolution")
    return out_ch // bo, in_ch // bi


class MaskedMultiRateHyperprior(nn.Module):
    """K rate points over one set of shared convolution weights (see the module docstring)."""

    def __init__(self, config: HyperpriorConfig) -> None:
        super().__init__()
        if config.mask_block is None:
            raise ValueError("a masked model needs mask_block in its config")
        self.config = config
        k = len(config.lambdas)
        if len(config.densities) != k:
            raise ValueError(f"{len(config.densities)} mask densities for {k} rate points")
        if any(not 0 < d <= 1 for d in config.densities) or list(config.densities) != sorted(
            config.densities
        ):
            raise ValueError("mask densities must be in (0, 1] and non-decreasing")
        # The structure every rate point runs through (forward; training hooks attach to it); it
        # holds no parameters of ours and is not a submodule.
        template = model_class(config)(config.gain_model())
        self.__dict__["template"] = template
        # The shared, masked convolutions (MASKED_LAYERS for a MeanScaleHyperprior template).
        self.masked_layers = masked_layers(template)
        self.transposed = {
            layer: isinstance(template.get_submodule(layer), nn.ConvTranspose2d)
            for layer in self.masked_layers
        }
        shared_names = {f"{layer}.weight" for layer in self.masked_layers}
        self.shared = nn.ParameterDict(
            {
                layer_key(layer): nn.Parameter(
                    template.get_submodule(layer).weight.detach().clone()
                )
                for layer in self.masked_layers
            }
        )
        self.independent_names = [
            name for name, _ in template.named_parameters() if name not in shared_names
        ]
        self.independent = nn.ModuleList()
        for rate in range(k):
            params = {}
            for name, p in template.named_parameters():
                if name in shared_names:
                    continue
                value = p.detach()[rate : rate + 1] if name.startswith("log_") else p.detach()
                params[layer_key(name)] = nn.Parameter(value.clone())
            self.independent.append(nn.ParameterDict(params))
        for layer in self.masked_layers:
            grid = _block_grid(
                self.shared[layer_key(layer)], self.transposed[layer], config.mask_block
            )
            self.register_buffer(f"mask_{layer_key(layer)}", torch.ones(k, *grid, dtype=torch.bool))
        template.to("meta")  # its values seeded ours; forward() swaps ours in, so drop them

    @property
    def num_rate_points(self) -> int:
        return len(self.config.lambdas)

    @property
    def device(self) -> torch.device:
        """Read from a mask (a buffer), so that asking touches no parameter."""
        return self.mask(self.masked_layers[0]).device

    def mask(self, layer: str) -> torch.Tensor:
        """(K, out blocks, in blocks) boolean masks of one shared layer."""
        return getattr(self, f"mask_{layer_key(layer)}")

    def density(self, rate: int) -> float:
        """Fraction of all mask blocks that rate point `rate` uses."""
        masks = [self.mask(layer)[rate] for layer in self.masked_layers]
        return sum(int(m.sum()) for m in masks) / sum(m.numel() for m in masks)

    def expanded_mask(self, layer: str, rate: int) -> torch.Tensor:
        """Rate point `rate`'s mask of `layer`, broadcastable over its weight tensor."""
        bo, bi = self.config.mask_block
        m = self.mask(layer)[rate].repeat_interleave(bo, 0).repeat_interleave(bi, 1)
        m = m.T if self.transposed[layer] else m
        return m[:, :, None, None].to(self.shared[layer_key(layer)].dtype)

    def parameters_at(self, rate: int) -> dict[str, torch.Tensor]:
        """Every parameter of rate point `rate`'s network, named as in its template's class."""
        params = {
            f"{layer}.weight": self.shared[layer_key(layer)] * self.expanded_mask(layer, rate)
            for layer in self.masked_layers
        }
        independent = self.independent[rate]
        params.update({name: independent[layer_key(name)] for name in self.independent_names})
        return params

    def forward(self, x: torch.Tensor, rate: int) -> dict[str, torch.Tensor]:
        """Training pass of one rate point for the whole batch (the template's forward)."""
        rate_points = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        return functional_call(self.template, self.parameters_at(rate), (x, rate_points))

    def rate_point_network(self, rate: int) -> MeanScaleHyperprior:
        """Rate point `rate` as a plain MeanScaleHyperprior for coding.

        It holds this model's own parameter tensors (no copies, so what runs is visibly the
        stored parameters): each shared convolution reads the shared weight through its block
        mask, every other layer the rate point's independent parameters. Its gain table has
        three rows: the rate point's own gain, that gain one mean gain step coarser (towards the
        previous rate point) and one step finer (towards the next), so positions 0 .. 2 of
        this network (1 is its own gain) cover a rate point either side with a scalar change of
        quantizer (QVRF: Tong et al., ECCV 2022).
        """
        lambdas = self.config.lambdas
        k = self.num_rate_points
        triple = (lambdas[max(rate - 1, 0)], lambdas[rate], lambdas[min(rate + 1, k - 1)])
        net = model_class(self.config)(self.config.gain_model(triple))
        independent = self.independent[rate]
        for name in self.independent_names:
            parent, _, attr = name.rpartition(".")
            module = net.get_submodule(parent) if parent else net
            if attr in ("log_gain", "log_inverse_gain"):
                delattr(module, attr)
                attr = f"own_{attr}"
            setattr(module, attr, independent[layer_key(name)])
        net.__class__ = _rate_point_class(type(net))
        net.gain_steps = (self._mean_log_gain_step(rate - 1), self._mean_log_gain_step(rate))
        for layer in self.masked_layers:
            conv = net.get_submodule(layer)
            del conv.weight
            conv.__class__ = _MASKED_CLASSES[type(conv)]
            conv.shared_weight = self.shared[layer_key(layer)]
            conv.register_buffer("block_mask", self.expanded_mask(layer, rate).detach())
        return net.eval()

    def _mean_log_gain_step(self, rate: int) -> float:
        """Mean log-gain from rate point `rate` to the next, within 0 .. K - 1 (the first or last
        step beyond the ends)."""
        k = self.num_rate_points
        if k == 1:
            return 0.0
        lo = min(max(rate, 0), k - 2)
        gains = [self.independent[i][layer_key("log_gain")].detach().mean() for i in (lo, lo + 1)]
        return float(gains[1] - gains[0])

    def parameter_counts(self) -> dict:
        """Shared, independent and used parameters (the table of Jiang et al. 2020)."""
        layers = self.masked_layers
        shared_by_layer = {layer: self.shared[layer_key(layer)] for layer in layers}
        union = [self.mask(layer).any(0) for layer in layers]
        bo, bi = self.config.mask_block
        kernel = {layer: w[0, 0].numel() for layer, w in shared_by_layer.items()}
        shared = sum(
            int(u.sum()) * bo * bi * kernel[layer] for u, layer in zip(union, layers, strict=True)
        )
        independent = sum(p.numel() for p in self.independent[0].values())
        used = [
            sum(int(self.mask(layer)[k].sum()) * bo * bi * kernel[layer] for layer in layers)
            + independent
            for k in range(self.num_rate_points)
        ]
        return {
            "shared": shared,
            "independent_per_rate_point": independent,
            "total": shared + independent * self.num_rate_points,
            "used": used,
            "mask_bits": sum(self.mask(layer).numel() for layer in layers),
        }


class _MaskedConv2d(nn.Conv2d):
    """A convolution whose weight is a shared weight seen through a block mask."""

    @property
    def weight(self) -> torch.Tensor:
        return self.shared_weight * self.block_mask


class _MaskedConvTranspose2d(nn.ConvTranspose2d):
    """A transposed convolution whose weight is a shared weight seen through a block mask."""

    @property
    def weight(self) -> torch.Tensor:
        return self.shared_weight * self.block_mask


_MASKED_CLASSES = {nn.Conv2d: _MaskedConv2d, nn.ConvTranspose2d: _MaskedConvTranspose2d}


class _RatePointHyperprior(MeanScaleHyperprior):
    """One rate point of a masked model: its gain table is the rate point's own (1, M) row one
    mean gain step coarser, itself, and one mean gain step finer (positions 0, 1, 2)."""

    @property
    def device(self) -> torch.device:
        return self.own_log_gain.device

    @property
    def log_gain(self) -> torch.Tensor:
        down, up = self.gain_steps
        own = self.own_log_gain
        return torch.cat([own - down, own, own + up])

    @property
    def log_inverse_gain(self) -> torch.Tensor:
        down, up = self.gain_steps
        own = self.own_log_inverse_gain
        return torch.cat([own + down, own, own - up])


_RATE_POINT_CLASSES: dict[type, type] = {MeanScaleHyperprior: _RatePointHyperprior}


def _rate_point_class(cls: type) -> type:
    """The rate-point class of a template class: _RatePointHyperprior's gain table over it."""
    if cls not in _RATE_POINT_CLASSES:
        name = f"_RatePoint{cls.__name__}"
        _RATE_POINT_CLASSES[cls] = type(name, (_RatePointHyperprior, cls), {})
    return _RATE_POINT_CLASSES[cls]


def block_norms(
    weight: torch.Tensor,
    transposed: bool,
    block: tuple[int, int],
    input_rms: torch.Tensor | None = None,
) -> torch.Tensor:
    """L2 norm of every (out block, in block) of a convolution weight.

    With `input_rms` (the root mean square of each input channel's activations), each weight is
    first scaled by its input channel's RMS, so a block's norm measures what it adds to the output
    rather than the size of its weights alone; weight magnitude by itself misranks the channels
    of a layer whose inputs differ in scale (activation-aware pruning, as in Sun et al., "A Simple
    and Effective Pruning Approach for Large Language Models", ICLR 2024).
    """
    w = weight.detach().transpose(0, 1) if transposed else weight.detach()
    if input_rms is not None:
        w = w * input_rms.to(w)[None, :, None, None]
    grid = _block_grid(weight, transposed, block)
    bo, bi = block
    blocks = w.reshape(grid[0], bo, grid[1], bi, -1)
    return blocks.pow(2).sum(dim=(1, 3, 4)).sqrt()


def pack_masks(masks: torch.Tensor) -> torch.Tensor:
    """Boolean masks -> uint8 bit-packed (8 blocks per byte), for model files."""
    return torch.from_numpy(np.packbits(masks.cpu().numpy().reshape(-1)))


def unpack_masks(packed: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse of pack_masks."""
    count = int(np.prod(shape))
    bits = np.unpackbits(packed.cpu().numpy())
    if bits.size < count or bits.size - count >= 8:
        raise ValueError(f"{bits.size} packed mask bits for a mask of shape {tuple(shape)}")
    return torch.from_numpy(bits[:count].reshape(shape).astype(bool))
