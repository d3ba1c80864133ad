"""Rate control (nic.ratecontrol): about one analysis transform and one real encode per target."""

import math

import numpy as np
import pytest
import torch
from skimage import data as skdata

from nic import codec, ratecontrol, zoo
from nic.bitstream import GAIN_STEPS, unpack
from nic.ratecontrol import encode_to_target


@pytest.fixture(scope="module")
def masked():
    return zoo.load("nic-masked-n128-v2")


@pytest.fixture(scope="module")
def coffee() -> np.ndarray:
    """A 600x400 photo of other content than the Kodak-size one."""
    return np.ascontiguousarray(skdata.coffee())


@pytest.fixture
def calls(monkeypatch) -> dict[str, int]:
    """How often rate control runs the analysis transform and the real encoder."""
    counts = {"analysis": 0, "pack_stream": 0}
    for name in counts:
        real = getattr(ratecontrol, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            counts[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(ratecontrol, name, counted)
    return counts


def _check_match(model, image, target, match) -> None:
    """In the ±5 % window, coded by the network that codes its position by default."""
    header, _ = unpack(match.data)
    assert 0.95 * target <= match.bpp <= 1.05 * target
    assert match.bpp == 8 * len(match.data) / (image.shape[0] * image.shape[1])
    assert header.rate_position == match.rate
    assert header.network == model.default_network(header.gain_code)


@pytest.mark.parametrize(
    ("photo", "target"),
    [
        ("kodak_size_photo", 0.06),
        ("kodak_size_photo", 0.25),
        ("kodak_size_photo", 0.75),
        ("kodak_size_photo", 1.5),
        ("coffee", 0.12),
        ("coffee", 1.0),
    ],
)
def test_a_target_runs_at_most_two_analyses_and_lands_in_its_window(
    masked, calls, request, photo, target
):
    image = request.getfixturevalue(photo)
    match = encode_to_target(image, masked, target)
    assert calls["analysis"] == match.analyses <= 2
    assert calls["pack_stream"] == match.encodes <= 2
    assert match.estimates <= 10
    _check_match(masked, image, target, match)


def test_the_file_is_the_plain_encode_at_the_chosen_position(masked, coffee):
    match = encode_to_target(coffee, masked, 0.25)
    assert codec.encode(coffee, masked, match.rate) == match.data


def test_a_gain_model_runs_one_analysis(kodak_size_photo, calls):
    model = zoo.load("nic-mshp-n128-v2")
    match = encode_to_target(kodak_size_photo, model, 0.5)
    assert calls["analysis"] == match.analyses == 1
    _check_match(model, kodak_size_photo, 0.5, match)


def test_a_model_without_a_prior_still_lands_in_its_window(masked, coffee, calls, monkeypatch):
    monkeypatch.setattr(ratecontrol, "RATE_PRIORS", {})
    for target in (0.06, 1.5):  # far from the middle rate point it starts at
        match = encode_to_target(coffee, masked, target)
        assert match.analyses <= 2
        _check_match(masked, coffee, target, match)


def test_out_of_reach_above_gives_the_last_position_after_one_analysis(masked, coffee, calls):
    match = encode_to_target(coffee, masked, 20.0)
    assert match.rate == masked.max_rate_position and match.bpp < 20 * 0.95
    assert calls["analysis"] == 1


@pytest.mark.parametrize("target", [math.nan, math.inf, 0.0, -1.0])
def test_a_target_that_is_not_a_positive_number_is_refused(masked, coffee, target):
    with pytest.raises(ValueError, match="positive finite"):
        encode_to_target(coffee, masked, target)


def test_targets_beyond_any_file_give_the_nearest_end(masked, coffee):
    assert encode_to_target(coffee, masked, 1e304).rate == masked.max_rate_position
    assert encode_to_target(coffee, masked, 1e-300).rate == 0


def test_activity_orders_photos_and_reads_a_large_one_in_rows(coffee, monkeypatch):
    flat = np.full((64, 96, 3), 128, np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    whole = ratecontrol.image_activity(coffee)
    assert ratecontrol.image_activity(flat) < whole < ratecontrol.image_activity(noise)
    assert math.isfinite(ratecontrol.image_activity(coffee[:1]))
    monkeypatch.setattr(ratecontrol, "ACTIVITY_PIXELS", coffee[..., 0].size // 8)
    assert ratecontrol.image_activity(coffee) == pytest.approx(whole, abs=0.05)


def test_one_network_predicts_the_others_estimates(masked, kodak_size_photo):
    """Network 3's estimate is the codec's at its own codes, and with its gain stretched it
    predicts the estimates of the networks that code the other rate points."""
    estimator = ratecontrol._Estimator(masked, kodak_size_photo, None)
    with torch.inference_mode():
        own = estimator.log_bits(3, 3 * GAIN_STEPS)
        assert math.exp(own) == pytest.approx(codec.estimated_bits(masked, kodak_size_photo, 3))
        for code in (0, GAIN_STEPS, 5 * GAIN_STEPS):
            owner = masked.default_network(code)
            predicted, actual = estimator.log_bits(3, code), estimator.log_bits(owner, code)
            assert predicted == pytest.approx(actual, abs=0.2)
    assert len(estimator.analyses) == 4
