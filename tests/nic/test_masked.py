"""Masked multi-rate models: masks, schedules, model files and coding."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from nic import codec
from nic.bitstream import GAIN_STEPS
from nic.model_file import load_model_file, save_model_file
from nic.models import HyperpriorConfig, MaskedMultiRateHyperprior, MeanScaleHyperprior
from nic.models.masked import MASKED_LAYERS, pack_masks, unpack_masks
from nic.ratecontrol import encode_to_target
from nic.train.prune_and_grow import (
    InputScales,
    block_saliency,
    freeze_gradients,
    grow,
    initialize_from,
    mask_update_due,
    phase_at,
    phase_parameters,
    prune,
    select_nested_masks,
)

CONFIG = HyperpriorConfig(
    N=16, M=32, lambdas=(0.002, 0.01, 0.05), mask_block=(8, 8), densities=(0.5, 0.75, 1.0)
)


@pytest.fixture
def masked() -> MaskedMultiRateHyperprior:
    torch.manual_seed(0)
    return MaskedMultiRateHyperprior(CONFIG)


def _nested(net: MaskedMultiRateHyperprior) -> bool:
    return all(
        bool((net.mask(layer)[k] <= net.mask(layer)[k + 1]).all())
        for layer in MASKED_LAYERS
        for k in range(net.num_rate_points - 1)
    )


def test_bad_mask_settings_are_refused():
    with pytest.raises(ValueError, match="3 rate points"):
        MaskedMultiRateHyperprior(replace(CONFIG, densities=(0.5, 1.0)))
    with pytest.raises(ValueError, match="non-decreasing"):
        MaskedMultiRateHyperprior(replace(CONFIG, densities=(0.9, 0.5, 1.0)))
    with pytest.raises(ValueError, match="does not divide"):
        MaskedMultiRateHyperprior(replace(CONFIG, mask_block=(5, 8)))


def test_config_round_trips_and_gain_configs_keep_their_form():
    assert HyperpriorConfig.from_dict(CONFIG.to_dict()) == CONFIG
    gain = HyperpriorConfig()
    assert "mask_block" not in gain.to_dict()
    assert HyperpriorConfig.from_dict(gain.to_dict()) == gain


def test_rate_point_network_is_the_masked_forward(masked):
    select_nested_masks(masked)
    x = torch.rand(1, 3, 64, 64)
    for k in range(masked.num_rate_points):
        net = masked.rate_point_network(k)
        torch.manual_seed(1)
        a = masked(x, k)
        torch.manual_seed(1)
        b = net(x, torch.ones(1, dtype=torch.long))  # row 1: its own gain
        for key in a:
            assert torch.equal(a[key], b[key]), key
    # A pruned block really is zero in that rate point's weights, and only there.
    w0 = masked.rate_point_network(0).g_a[2].weight
    w2 = masked.rate_point_network(2).g_a[2].weight
    assert (w0 == 0).any() and not (w2 == 0).any()


def test_masks_pack_to_bits_and_back(masked):
    select_nested_masks(masked)
    mask = masked.mask("h_s.2")
    packed = pack_masks(mask)
    assert packed.numel() == -(-mask.numel() // 8)
    assert torch.equal(unpack_masks(packed, mask.shape), mask)
    with pytest.raises(ValueError, match="packed mask bits"):
        unpack_masks(packed[:-2], mask.shape)


def test_joint_mask_selection_is_nested_with_the_configured_densities(masked):
    select_nested_masks(masked)
    assert _nested(masked)
    for layer in MASKED_LAYERS:
        densities = masked.mask(layer).float().mean(dim=(1, 2)).tolist()
        assert densities == pytest.approx(CONFIG.densities, abs=0.02)


def test_progressive_phases_freeze_earlier_rate_points(masked):
    x = torch.rand(2, 3, 64, 64)
    lam = torch.full((2,), 0.01)

    def train_phase(rate: int) -> None:
        grow(masked, rate)
        optimizer = torch.optim.Adam(phase_parameters(masked, rate), lr=1e-2)
        for i in range(4):
            if i == 2:
                prune(masked, rate)
            out = masked(x, rate)
            loss = (out["x_hat"] - x).pow(2).mean() - lam[0] * out["y_likelihoods"].log().mean()
            optimizer.zero_grad()
            loss.backward()
            freeze_gradients(masked, rate)
            optimizer.step()

    train_phase(0)
    before = {k: v.detach().clone() for k, v in masked.parameters_at(0).items()}
    train_phase(1)
    after = masked.parameters_at(0)
    assert all(torch.equal(before[k], after[k]) for k in before)
    # ...while rate point 1 did change weights that rate point 0 does not use.
    assert not torch.equal(masked.parameters_at(1)["g_a.2.weight"], before["g_a.2.weight"])
    assert bool((masked.mask("g_a.2")[0] <= masked.mask("g_a.2")[1]).all())
    assert masked.mask("g_a.2")[1].float().mean() == pytest.approx(0.75)


def test_joint_masks_are_reselected_twenty_times_then_fixed():
    due = [s for s in range(3283) if mask_update_due(s, 3283, 0.5)]
    assert len(due) == 20 and due[0] == 1641 // 20 and due[-1] == 3283 // 2
    # A run too short for twenty updates updates at every step of its first half but the first.
    assert [s for s in range(10) if mask_update_due(s, 10, 0.5)] == [1, 2, 3, 4, 5]


def test_block_saliency_follows_what_a_block_adds_not_its_weight_scale(masked):
    """Scaling one latent channel up before g_s.0 and its g_s.0 weights down leaves the network
    the same: activation-aware saliency stays, the plain weight norm ranks that channel last."""
    x = torch.rand(2, 3, 64, 64)
    scales = InputScales(masked)
    torch.manual_seed(1)  # the same quantization noise in both passes
    masked(x, 1)
    before = block_saliency(masked, "g_s.0", scales)
    with torch.no_grad():
        for params in masked.independent:  # y_hat * inverse gain is g_s.0's input
            params["log_inverse_gain"][:, :8] += np.log(100.0)
        masked.shared["g_s_0"][:8] /= 100.0  # (in, out, k, k): input channels 0-7, one block row
    scales.reset()
    torch.manual_seed(1)
    masked(x, 1)
    after = block_saliency(masked, "g_s.0", scales)
    assert torch.allclose(before, after, rtol=1e-4)
    plain = block_saliency(masked, "g_s.0", None)
    assert (plain[:, 0] < plain[:, 1:].min()).all()
    assert scales.rms("g_s.0").shape == (CONFIG.M,) and scales.rms("g_a.2").shape == (CONFIG.N,)


def test_phases_cover_the_run_in_order():
    phases = [phase_at(s, 100, 3, 0.5) for s in range(100)]
    assert [p.rate for p in (phases[0], phases[33], phases[34], phases[99])] == [0, 0, 1, 2]
    assert phases[0].prune_at == 17 and phases[99].end == 100


def test_initializing_from_a_gain_model_copies_weights_and_gains():
    torch.manual_seed(0)
    source = MeanScaleHyperprior(HyperpriorConfig(N=16, M=32, lambdas=(0.002, 0.01, 0.05)))
    with torch.no_grad():
        source.log_gain.copy_(torch.randn_like(source.log_gain))
    masked = MaskedMultiRateHyperprior(replace(CONFIG, lambdas=(0.002, 0.005, 0.05)))
    initialize_from(masked, source)
    assert torch.equal(masked.shared["g_s_2"], source.g_s[2].weight)
    assert torch.equal(masked.independent[0]["log_gain"][0], source.log_gain[0])
    # 0.005 lies between 0.002 and 0.01: the log-gain is interpolated in log lambda.
    t = np.log(0.005 / 0.002) / np.log(0.01 / 0.002)
    expected = (1 - t) * source.log_gain[0] + t * source.log_gain[1]
    assert torch.allclose(masked.independent[1]["log_gain"][0], expected)
    with pytest.raises(ValueError, match="cannot initialize"):
        initialize_from(MaskedMultiRateHyperprior(replace(CONFIG, N=24)), source)


@pytest.fixture
def masked_file(tmp_path, masked):
    select_nested_masks(masked)
    path = tmp_path / "masked.pt"
    save_model_file(path, "tiny-masked", masked, {})
    return path


def test_masked_model_files_round_trip(masked_file, masked):
    model = load_model_file(masked_file)
    assert model.masked
    assert len(model.z_tables) == masked.num_rate_points
    for layer in MASKED_LAYERS:
        assert torch.equal(model.net.mask(layer), masked.mask(layer))
    assert model.max_rate_position == masked.num_rate_points - 1 / GAIN_STEPS


def test_masked_model_codes_every_rate_position(masked_file, small_photo):
    model = load_model_file(masked_file)
    for rate in (0, 1.5, 2, model.max_rate_position):
        stream = codec.encode(small_photo, model, rate)
        header, _, _ = codec.decode_latents(stream, model)
        assert header.rate_position == pytest.approx(rate, abs=1 / GAIN_STEPS)
        assert codec.decode(stream, model).shape == small_photo.shape
    with pytest.raises(ValueError, match="outside"):
        codec.encode(small_photo, model, 3.0)


def test_rate_control_searches_across_rate_points(masked_file, small_photo):
    model = load_model_file(masked_file)
    low = len(codec.encode(small_photo, model, 0.5))
    high = len(codec.encode(small_photo, model, 2.5))
    target = 8 * (low + high) / 2 / small_photo[..., 0].size
    match = encode_to_target(small_photo, model, target)
    assert 0 <= match.rate <= model.max_rate_position
    assert codec.decode(match.data, model).shape == small_photo.shape
    assert match.bpp == pytest.approx(8 * len(match.data) / small_photo[..., 0].size)
