import csv

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from nic import codec
from nic.model_file import load_model_file
from nic.train.data import PatchSampler, list_images
from nic.train.export import export_checkpoint
from nic.train.trainer import TrainConfig, train


@pytest.fixture
def tiny_setup(tmp_path, astronaut):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        Image.fromarray(astronaut[i * 100 : i * 100 + 150, :200]).save(data / f"{i}.png")
    config = {
        "output": "run",
        "data": ["data"],
        "model": {"N": 8, "M": 12, "lambdas": [0.005, 0.05]},
        "steps": 3,
        "batch": 2,
        "patch": 64,
        "checkpoint_every": 2,
        "threads": 1,
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, config


def test_training_runs_resumes_and_exports_a_working_model(tiny_setup, tmp_path, small_photo):
    path, config = tiny_setup
    ckpt = train(TrainConfig.from_yaml(path))
    state = torch.load(ckpt, weights_only=False)
    assert state["step"] == 3 and state["wall_time_s"] > 0
    first_weights = state["model"]["g_a.0.weight"].clone()

    config["steps"] = 5
    path.write_text(yaml.safe_dump(config))
    train(TrainConfig.from_yaml(path))
    state = torch.load(ckpt, weights_only=False)
    assert state["step"] == 5
    assert not torch.equal(first_weights, state["model"]["g_a.0.weight"])
    with open(tmp_path / "run" / "log.csv") as f:
        assert next(csv.reader(f))[:3] == ["step", "loss", "bpp"]

    out = tmp_path / "tiny.pt"
    export_checkpoint(ckpt, out, "tiny", torch.float16)
    model = load_model_file(out)
    assert model.metadata["training"]["steps"] == 5
    assert model.metadata["training"]["patch"] == 64
    decoded = codec.decode(codec.encode(small_photo, model, 1), model)
    assert decoded.shape == small_photo.shape


def test_config_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("output: x\ndata: [d]\nstepz: 3\n")
    with pytest.raises(ValueError, match="unknown settings.*stepz"):
        TrainConfig.from_yaml(bad)
    bad.write_text("output: x\n")
    with pytest.raises(ValueError, match="missing required setting 'data'"):
        TrainConfig.from_yaml(bad)


def test_resuming_with_another_architecture_is_refused(tiny_setup):
    path, config = tiny_setup
    train(TrainConfig.from_yaml(path))
    config["model"]["N"] = 16
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="another model config"):
        train(TrainConfig.from_yaml(path))


def test_patches_are_augmented_and_in_range(tiny_setup):
    path, _ = tiny_setup
    files = list_images([path.parent / "data"])
    sampler = PatchSampler(files, patch=64, min_scale=0.5, seed=1)
    batch = sampler.batch(6)
    assert batch.shape == (6, 3, 64, 64)
    assert batch.min() >= 0 and batch.max() <= 1
    assert len({tuple(np.round(p.mean((1, 2)).numpy(), 4)) for p in batch}) == 6


def test_learning_rate_schedule():
    c = TrainConfig(output="x", data=("d",), steps=100, lr=1e-4, lr_final=1e-5, decay_from=0.5)
    assert c.learning_rate(0) == c.learning_rate(49) == 1e-4
    assert c.learning_rate(100) == pytest.approx(1e-5)
    assert 1e-5 < c.learning_rate(75) < 1e-4
