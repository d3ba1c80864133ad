"""The ELIC-style entropy model: its integer coding plan is exact whatever the order or batching,
its float network computes the same parameters as coding, and it is a masked template too."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from nic import zoo
from nic.entropy import scale_table
from nic.models import (
    ElicHyperprior,
    HyperpriorConfig,
    IntegerElic,
    IntegerHyperSynthesis,
    IntegerOverflowError,
    MaskedMultiRateHyperprior,
    MeanScaleHyperprior,
    build_model,
    integer_entropy_path,
    model_class,
)
from nic.models.elic import checkerboard
from nic.models.integer_synthesis import FRACTION_BITS, IntegerSequential
from nic.models.masked import MASKED_LAYERS, masked_layers

CONFIG = HyperpriorConfig(
    N=16, M=32, lambdas=(0.004, 0.02, 0.1), entropy_model="elic", groups=(8, 8, 16)
)
MASKED = replace(CONFIG, mask_block=(8, 8), densities=(0.5, 0.75, 1.0))


@pytest.fixture(scope="module")
def net() -> ElicHyperprior:
    torch.manual_seed(0)
    return ElicHyperprior(CONFIG).eval()


@pytest.fixture(scope="module")
def latent(net) -> tuple[torch.Tensor, np.ndarray]:
    """A gain-scaled latent (1, 32, 8, 12) large enough to use many tables, and its z."""
    torch.manual_seed(1)
    with torch.no_grad():
        y = net.analyze(torch.rand(1, 3, 128, 192), 1.0) * 30
        z = torch.round(net.h_a(y)).numpy().astype(np.int64)
    return y, z


def _code(plan, y: torch.Tensor) -> tuple[torch.Tensor, list]:
    """What the encoder does: quantize step by step; returns y_hat and every step's output."""
    y = y.double()
    y_hat = torch.zeros_like(y)
    steps = []
    for step in range(plan.steps):
        mean, index, where = plan.parameters(step, y_hat)
        y_hat = torch.where(where, torch.round(y - mean) + mean, y_hat)
        steps.append((mean, index, where))
    return y_hat, steps


def _same(a: tuple, b: tuple) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_the_plan_codes_every_latent_once_group_by_group_in_checkerboard_halves(net, latent):
    y, z = latent
    plan = IntegerElic(net, scale_table()).start(z, "cpu")
    assert plan.steps == 6 == net.coding_steps
    _, steps = _code(plan, y)
    wheres = torch.stack([where for _, _, where in steps])
    assert torch.equal(wheres.sum(0), torch.ones_like(wheres[0], dtype=torch.long))
    anchor = checkerboard(8, 12)
    assert torch.equal(steps[0][2][0, :8], anchor.expand(8, 8, 12))  # group 0's anchors first
    assert torch.equal(steps[1][2][0, :8], (~anchor).expand(8, 8, 12))
    assert not steps[2][2][0, :8].any() and steps[5][2][0, 16:].any()
    for mean, index, where in steps:
        fixed = mean * 2.0**FRACTION_BITS
        assert torch.equal(fixed, torch.round(fixed))  # exact fixed point
        assert not mean[~where].any() and not index[~where].any()
    assert len(torch.unique(torch.stack([i for _, i, _ in steps]))) > 4


def test_step_parameters_equal_those_recomputed_from_the_final_latent_in_any_order(net, latent):
    y, z = latent
    path = IntegerElic(net, scale_table())
    y_hat, steps = _code(path.start(z, "cpu"), y)
    # A fresh plan from the final y_hat (later steps' latents present), steps in reverse order.
    plan = path.start(torch.from_numpy(z), "cpu")
    for step in reversed(range(plan.steps)):
        assert _same(plan.parameters(step, y_hat), steps[step]), step
    # Latents of this step and later ones are never read: garbage there changes nothing.
    for step in range(plan.steps):
        later = torch.zeros_like(y_hat, dtype=torch.bool)
        for _, _, where in steps[step:]:
            later |= where
        noisy = torch.where(later, torch.randn_like(y_hat) * 100, y_hat)
        assert _same(path.start(z, "cpu").parameters(step, noisy), steps[step]), step


def test_the_integer_path_does_not_depend_on_threads_or_batching(net, latent):
    y, z = latent
    path = IntegerElic(net, scale_table())
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _code(path.start(z, "cpu"), y)
        torch.set_num_threads(max(2, threads))
        two = _code(path.start(z, "cpu"), y)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one[0], two[0])
    assert all(_same(a, b) for a, b in zip(one[1], two[1], strict=True))
    # The aggregation (1x1 convolutions) runs on one step's positions gathered; over the whole
    # plane, and a channel context summed over its input channels in two halves, it is the same.
    y_hat = one[0]
    fixed = y_hat * 2.0**FRACTION_BITS
    features = torch.randint(-(2**16), 2**16, (1, 2 * 16 + 2 * 16, 8, 12)).double()
    aggregation = path.aggregation[1]
    anchor = checkerboard(8, 12)
    whole = aggregation(features)[:, :, anchor]
    gathered = aggregation(features[:, :, anchor][..., None])[..., 0]
    assert torch.equal(whole, gathered)
    conv = path.channel_context[0].layers[0]
    weight, bias = conv.integer_weights("cpu")
    x = fixed[:, :8]
    full = nn.functional.conv2d(x, weight, bias, padding=2)
    halves = nn.functional.conv2d(x[:, 4:], weight[:, 4:], bias, padding=2)
    halves = halves + nn.functional.conv2d(x[:, :4], weight[:, :4], None, padding=2)
    assert torch.equal(full, halves)


def test_float_network_computes_the_coding_parameters(net, latent):
    """The training forward's quantization is the coding's: its means are the integer path's
    within fixed-point error, its decoded latents the coded ones (but at rounding ties)."""
    y, z = latent
    y_int, steps = _code(IntegerElic(net, scale_table()).start(z, "cpu"), y)
    mean_int = sum(torch.where(where, mean, 0.0) for mean, _, where in steps)
    with torch.no_grad():
        mean_f, _ = net.entropy_parameters(torch.from_numpy(z).float(), y_int.float())
    assert (mean_f.double() - mean_int).abs().max() < 0.01
    with torch.no_grad():
        bits, y_hat = net.float_estimate(y)
    assert (y_hat.double() - y_int).abs().max() < 0.01 and bits > 0


class _Rounded(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(self.inner(x))


def test_training_forward_quantizes_as_coding(net, monkeypatch):
    """With its noise zeroed and h_a rounded, the training forward's hyper-latent is the coded
    one; its means are then the integer path's and its decoded latents the coded ones."""
    recorded = {}
    decode_steps = net.decode_steps

    def record(hyper, y, quantize):
        recorded["y"] = y
        recorded["mean"], scale, recorded["y_hat"] = decode_steps(hyper, y, quantize)
        return recorded["mean"], scale, recorded["y_hat"]

    monkeypatch.setattr(torch.Tensor, "uniform_", lambda t, a, b: t.zero_())
    h_a = net.h_a
    torch.manual_seed(2)
    x = torch.rand(1, 3, 128, 192)
    try:
        net.decode_steps, net.h_a = record, _Rounded(h_a)
        with torch.no_grad():
            net.log_gain += np.log(30)  # latents large enough to use several tables
            out = net(x, torch.tensor([2]))
    finally:
        del net.decode_steps
        net.h_a = h_a
        with torch.no_grad():
            net.log_gain -= np.log(30)
    y = recorded["y"]
    assert y.abs().max() > 5  # the highest rate point's latents use several tables
    with torch.no_grad():
        z = torch.round(h_a(y)).numpy().astype(np.int64)
    y_int, steps = _code(IntegerElic(net, scale_table()).start(z, "cpu"), y)
    mean_int = sum(torch.where(where, mean, 0.0) for mean, _, where in steps)
    assert (recorded["mean"].double() - mean_int).abs().max() < 0.01
    assert (recorded["y_hat"].double() - y_int).abs().gt(0.01).double().mean() < 0.01
    assert out["y_likelihoods"].shape == y.shape and out["x_hat"].shape == x.shape


def test_training_forward_trains_every_network(net):
    model = ElicHyperprior(CONFIG)
    out = model(torch.rand(2, 3, 64, 64), torch.tensor([0, 2]))
    loss = out["x_hat"].square().mean() - sum(out[k].log().mean() for k in out if "lik" in k)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_activations_beyond_exact_float64_are_refused(net, latent):
    _, z = latent
    plan = IntegerElic(net, scale_table()).start(z, "cpu")
    huge = torch.full((1, 32, 8, 12), 2.0**40, dtype=torch.float64)
    with pytest.raises(IntegerOverflowError):
        plan.parameters(3, huge)


def test_integer_entropy_path_and_model_class_follow_the_entropy_model(net):
    assert model_class(CONFIG) is ElicHyperprior
    assert model_class(HyperpriorConfig()) is MeanScaleHyperprior
    assert isinstance(integer_entropy_path(net, scale_table()), IntegerElic)
    gain = MeanScaleHyperprior(HyperpriorConfig(N=16, M=32))
    path = integer_entropy_path(gain, scale_table())
    assert isinstance(path, IntegerHyperSynthesis) and path.start(np.zeros((1, 16, 1, 1)), "cpu")
    assert isinstance(build_model(CONFIG), ElicHyperprior)
    # IntegerSequential is the arithmetic of both: the hyperprior's path runs h_s on it.
    assert isinstance(path.network, IntegerSequential)


def test_configs_round_trip_and_old_model_files_keep_their_form():
    for config in (CONFIG, MASKED, replace(CONFIG, groups=(), M=320)):
        assert HyperpriorConfig.from_dict(config.to_dict()) == config
    assert replace(CONFIG, groups=(), M=320).channel_groups == (16, 16, 32, 64, 192)
    assert MASKED.to_dict()["entropy_model"] == "elic"
    assert list(HyperpriorConfig().to_dict()) == ["N", "M", "lambdas", "distortion"]
    assert list(replace(MASKED, entropy_model="hyperprior", groups=()).to_dict()) == [
        *["N", "M", "lambdas", "distortion", "mask_block", "densities"]
    ]
    for entry in zoo.entries():  # the zoo's files: their stored config is what to_dict writes
        raw = torch.load(entry.path, weights_only=True, map_location="cpu")["config"]
        assert HyperpriorConfig.from_dict(raw).to_dict() == raw
        assert HyperpriorConfig.from_dict(raw).entropy_model == "hyperprior"
    with pytest.raises(ValueError, match="entropy_model"):
        HyperpriorConfig(entropy_model="autoregressive")
    with pytest.raises(ValueError, match="summing to M=32"):
        replace(CONFIG, groups=(8, 8))
    with pytest.raises(ValueError, match="model.groups is needed for ELIC with M=96"):
        HyperpriorConfig(M=96, entropy_model="elic")  # ELIC's default groups need M > 128
    with pytest.raises(ValueError, match="elic only"):
        HyperpriorConfig(groups=(96, 96))


@pytest.mark.parametrize("config", [replace(MASKED, entropy_model="hyperprior", groups=()), MASKED])
def test_masked_models_share_and_mask_every_inner_convolution(config):
    torch.manual_seed(0)
    masked = MaskedMultiRateHyperprior(config)
    template = model_class(config)(config.gain_model())
    layers = masked.masked_layers
    assert layers == masked_layers(template)
    assert "g_a.0" not in layers and "g_s.6" not in layers and "g_a.2" in layers
    if config.entropy_model == "hyperprior":
        assert layers == MASKED_LAYERS
    else:
        assert {"aggregation.2.4", "channel_context.1.2", "spatial_context.0", "h_s.4"} <= set(
            layers
        )
        assert len(layers) == len(MASKED_LAYERS) + 2 * 2 + 3 + 3 * 3
    # A block masked off in rate point 0 is zero in its weights, and only there.
    last = layers[-1]
    masked.mask(last)[0, 0, 0] = False
    w0 = masked.parameters_at(0)[f"{last}.weight"]
    assert not w0[:8, :8].any() and w0[8:].all()
    assert masked.parameters_at(1)[f"{last}.weight"].all()
    out = masked(torch.rand(2, 3, 64, 64), 1)
    assert out["y_likelihoods"].shape == (2, 32, 4, 4)
    loss = out["x_hat"].square().mean() - out["y_likelihoods"].log().mean()
    loss.backward()
    assert masked.shared[last.replace(".", "_")].grad is not None


def _rate_point_matches(masked: MaskedMultiRateHyperprior, rate: int) -> bool:
    net = masked.rate_point_network(rate)
    if type(masked.template) not in type(net).__mro__:
        return False
    params = masked.parameters_at(rate)
    for name, value in params.items():
        if "log_" in name:
            continue
        parent, _, attr = name.rpartition(".")
        if not torch.equal(getattr(net.get_submodule(parent), attr), value):
            return False
    return True


def test_gain_model_rate_point_networks_are_the_masked_parameters():
    torch.manual_seed(0)
    masked = MaskedMultiRateHyperprior(replace(MASKED, entropy_model="hyperprior", groups=()))
    masked.mask("h_s.2")[0, 0, 0] = False
    assert _rate_point_matches(masked, 0)


def test_elic_rate_point_networks_are_the_masked_parameters():
    torch.manual_seed(0)
    masked = MaskedMultiRateHyperprior(MASKED)
    masked.mask("aggregation.2.0")[0, 0, 0] = False
    assert _rate_point_matches(masked, 0)
    net = masked.rate_point_network(0)
    plan = integer_entropy_path(net, scale_table()).start(np.zeros((1, 16, 1, 1)), "cpu")
    assert plan.steps == 6
