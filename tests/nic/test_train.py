import csv
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from nic import codec
from nic.cli import main
from nic.model_file import load_model_file, save_model_file
from nic.models import HyperpriorConfig, MeanScaleHyperprior, build_model
from nic.train.checkpoint import CheckpointError, load_checkpoint
from nic.train.data import PatchSampler, list_images
from nic.train.export import export_checkpoint
from nic.train.loss import RateBalance, rd_terms
from nic.train.trainer import (
    FIT_WARMUP_STEPS,
    TrainConfig,
    TrainStep,
    evaluate_holdout,
    holdout_crops,
    slim_checkpoint,
    train,
)


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
    state = load_checkpoint(ckpt)
    assert state["step"] == 3 and state["wall_time_s"] > 0
    first_weights = state["model"]["g_a.0.weight"].clone()

    config["steps"] = 5
    path.write_text(yaml.safe_dump(config))
    train(TrainConfig.from_yaml(path))
    state = load_checkpoint(ckpt)
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
    for text, message in [
        ("output: x\ndata: [d]\n  steps: [3\n", "not valid YAML \\(line 3\\)"),
        ("output: x\ndata: [d]\nsteps: many\n", "steps must be a whole number >= 1, not 'many'"),
        ("output: x\ndata: [d]\npatch: 100\n", "patch must be a multiple of 64, not 100"),
        ("output: x\ndata: [d]\nlr: .nan\n", "lr must be a number > 0, not nan"),
        ("output: x\ndata: []\n", "data must be a folder or a list of folders"),
        ("output: x\ndata: [d]\nmodel: 5\n", "model must be a mapping"),
        ("output: x\ndata: [d]\nmodel: {N: 100000000}\n", "model.N must be a whole number from 1"),
        ("output: x\ndata: [d]\nmodel: {lambdas: [0, 1]}\n", "model.lambdas must be a list"),
        ("output: x\ndata: [d]\nmodel: {width: 3}\n", "unknown model settings \\['width'\\]"),
        ("output: x\ndata: [d]\nrate_balance: fair\n", "rate_balance must be one of none, loss"),
        ("output: x\ndata: [d]\ncompile: fast\n", "compile must be one of none, default"),
        ("output: x\ndata: [d]\nchannels_last: yes please\n", "channels_last must be true or"),
        ("output: x\ndata: [d]\nholdout: []\n", "holdout must be a folder or a list"),
        ("output: x\ndata: [d]\nholdout_every: 0\n", "holdout_every must be a whole number"),
    ]:
        bad.write_text(text)
        with pytest.raises(ValueError, match=message):
            TrainConfig.from_yaml(bad)


def test_time_budgets_must_be_positive(tiny_setup):
    path, _ = tiny_setup
    for budget in ({"max_minutes": float("nan")}, {"fit_minutes": -1.0}):
        with pytest.raises(ValueError, match="minutes must be a number > 0"):
            train(TrainConfig.from_yaml(path), **budget)
    assert not (path.parent / "run").exists()  # refused before anything was written


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


def test_fit_minutes_sets_steps_so_the_decay_ends_with_the_budget(tiny_setup):
    path, config = tiny_setup
    config.update(steps=1_000_000, decay_from=0.0, batch=1)
    path.write_text(yaml.safe_dump(config))
    ckpt = train(TrainConfig.from_yaml(path), fit_minutes=0.2)
    state = load_checkpoint(ckpt)
    fitted = replace(TrainConfig.from_yaml(path), steps=state["train_config"]["steps"])
    assert FIT_WARMUP_STEPS < fitted.steps < 1_000_000
    # The chunk ran to about the fitted length, so the learning rate had mostly decayed.
    assert state["step"] >= 0.5 * fitted.steps
    assert fitted.learning_rate(state["step"]) < 0.5 * fitted.lr


def test_slim_checkpoint_drops_optimizer_and_resumes(tiny_setup, tmp_path):
    path, config = tiny_setup
    ckpt = train(TrainConfig.from_yaml(path))
    slim = tmp_path / "slim.pt"
    slim_checkpoint(ckpt, slim)
    state = load_checkpoint(slim)
    assert "optimizer" not in state
    assert state["model"]["g_a.0.weight"].dtype == torch.float16
    assert slim.stat().st_size < ckpt.stat().st_size
    slim.replace(ckpt)
    config["steps"] = 5
    path.write_text(yaml.safe_dump(config))
    assert load_checkpoint(train(TrainConfig.from_yaml(path)))["step"] == 5


class RunsCode:
    """Pickles as a call that writes `marker`: what a checkpoint that runs code holds."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def one_error_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nic: error: "), text
    return lines[0]


def test_a_checkpoint_that_runs_code_is_refused_and_its_code_never_runs(
    tiny_setup, tmp_path, capsys
):
    path, _ = tiny_setup
    ckpt = train(TrainConfig.from_yaml(path))
    marker = tmp_path / "MARKER"
    state = load_checkpoint(ckpt)
    state["data"]["note"] = RunsCode(marker)
    evil = tmp_path / "evil.pt"
    torch.save(state, evil)
    torch.load(evil, weights_only=False)  # unpickled in full, the file runs its code
    assert marker.read_text() == "ran"
    marker.unlink()

    out = tmp_path / "model.pt"
    export = [sys.executable, "-m", "nic.cli", "export", str(evil), str(out), "--name", "x"]
    result = subprocess.run(export, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "it holds exec, not only tensors and plain values" in one_error_line(result.stderr)
    assert not out.exists() and not marker.exists()

    shutil.copy(evil, ckpt)  # resuming from it
    with pytest.raises(CheckpointError, match="it holds exec"):
        train(TrainConfig.from_yaml(path))
    capsys.readouterr()
    assert main(["train", str(path)]) == 1
    assert "it holds exec" in one_error_line(capsys.readouterr().err)
    with pytest.raises(CheckpointError, match="it holds exec"):
        slim_checkpoint(ckpt, tmp_path / "slim.pt")
    assert ckpt.read_bytes() == evil.read_bytes()  # left as it was
    assert not (tmp_path / "slim.pt").exists() and not marker.exists()


def test_damaged_checkpoints_are_refused_in_one_line(tiny_setup, tmp_path, capsys):
    path, _ = tiny_setup
    ckpt = train(TrainConfig.from_yaml(path))
    good = ckpt.read_bytes()
    state = load_checkpoint(ckpt)
    (tmp_path / "truncated.pt").write_bytes(good[: len(good) // 2])
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "text.pt").write_text("not a checkpoint\n")
    torch.save({"format": "nic-model", "weights": {}}, tmp_path / "model_file.pt")
    huge = {**state["model_config"], "N": 1_000_000}  # refused before anything is allocated
    torch.save({**state, "model_config": huge}, tmp_path / "huge.pt")
    torch.save({**state, "hardware": "H200"}, tmp_path / "hardware.pt")
    torch.save({**state, "train_config": {}}, tmp_path / "settings.pt")
    expected = {
        "truncated.pt": "not a readable training checkpoint",
        "empty.pt": "not a readable training checkpoint",
        "text.pt": "not a readable training checkpoint",
        "model_file.pt": "not a training checkpoint \\(no model_config, train_config",
        "huge.pt": "weight g_a.0.weight does not fit its model config",
        "hardware.pt": "damaged checkpoint \\(wrong type of hardware\\)",
        "settings.pt": "damaged checkpoint \\(KeyError: 'batch'\\)",
        "missing.pt": "checkpoint not found",
    }
    out = tmp_path / "model.pt"
    capsys.readouterr()
    for name, message in expected.items():
        with pytest.raises(CheckpointError, match=message):
            export_checkpoint(tmp_path / name, out, "x")
        assert main(["export", str(tmp_path / name), str(out), "--name", "x"]) == 1
        assert message.replace("\\", "") in one_error_line(capsys.readouterr().err)
        assert not out.exists()

    ckpt.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="not a readable training checkpoint"):
        train(TrainConfig.from_yaml(path))
    assert ckpt.read_bytes() == good[: len(good) // 2]  # left for the user to look at
    torch.save({**state, "sampler_rng": {"bit_generator": "PCG64"}}, ckpt)
    with pytest.raises(CheckpointError, match="damaged checkpoint"):
        train(TrainConfig.from_yaml(path))


@pytest.fixture
def masked_setup(tiny_setup):
    path, config = tiny_setup
    config["model"] = {
        "N": 16,
        "M": 32,
        "lambdas": [0.005, 0.05],
        "mask_block": [8, 8],
        "densities": [0.5, 1.0],
    }
    config.update(steps=8, baselines=True, checkpoint_every=4)
    path.write_text(yaml.safe_dump(config))
    return path, config


def test_masked_joint_run_trains_baselines_on_the_same_steps(masked_setup, tmp_path, small_photo):
    path, config = masked_setup
    ckpt = train(TrainConfig.from_yaml(path))
    state = load_checkpoint(ckpt)
    assert state["step"] == 8 and len(state["baselines"]) == 2
    assert state["model"]["mask_g_a_2"][0].float().mean() == pytest.approx(0.5)
    with open(tmp_path / "run" / "log.csv") as f:
        header = next(csv.reader(f))
    assert header[-5:] == ["rate_point", "mask_density", *header[-3:]]
    assert header[-3:] == ["baseline_loss", "baseline_bpp", "baseline_psnr_db"]
    out = tmp_path / "masked.pt"
    export_checkpoint(ckpt, out, "tiny-masked")
    model = load_model_file(out)
    assert model.masked and model.metadata["training"]["schedule"] == "joint"
    assert codec.decode(codec.encode(small_photo, model, 1.5), model).shape == small_photo.shape


def test_slimmed_masked_runs_drop_baselines_and_say_so_on_resume(masked_setup, tmp_path):
    path, config = masked_setup
    ckpt = train(TrainConfig.from_yaml(path))
    slim_checkpoint(ckpt, ckpt)
    assert "baselines" not in load_checkpoint(ckpt)
    config["steps"] = 10
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="no baselines"):
        train(TrainConfig.from_yaml(path))


def test_progressive_runs_keep_their_fitted_length(masked_setup):
    path, config = masked_setup
    config.update(schedule="progressive", baselines=False)
    path.write_text(yaml.safe_dump(config))
    train(TrainConfig.from_yaml(path))
    with pytest.raises(ValueError, match="keeps the length"):
        train(TrainConfig.from_yaml(path), fit_minutes=0.1)


def test_schedule_settings_are_checked(masked_setup, tiny_setup):
    path, config = masked_setup
    for key, value, message in [
        ("schedule", "random", "schedule must be"),
        ("precision", "fp8", "precision must be"),
        ("grow_fraction", 1.5, "grow_fraction"),
    ]:
        path.write_text(yaml.safe_dump({**config, key: value}))
        with pytest.raises(ValueError, match=message):
            train(TrainConfig.from_yaml(path))
    path.write_text(yaml.safe_dump({**config, "model": {"N": 8, "M": 12}}))
    with pytest.raises(ValueError, match="needs a masked model"):
        train(TrainConfig.from_yaml(path))
    gain = {**config, "model": {"N": 8, "M": 12}, "baselines": False}
    path.write_text(yaml.safe_dump({**gain, "rate_balance": "gradient"}))
    with pytest.raises(ValueError, match="gradient needs one rate point per step"):
        train(TrainConfig.from_yaml(path))
    path.write_text(yaml.safe_dump({**config, "compile": "reduce-overhead"}))
    with pytest.raises(ValueError, match="replays CUDA graphs"):
        train(TrainConfig.from_yaml(path))


def test_bf16_autocast_trains_with_float32_rates(tiny_setup):
    path, config = tiny_setup
    config["precision"] = "bf16"
    path.write_text(yaml.safe_dump(config))
    state = load_checkpoint(train(TrainConfig.from_yaml(path)))
    assert state["step"] == 3
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    net = MeanScaleHyperprior(HyperpriorConfig(N=8, M=12, lambdas=(0.01,)))
    with torch.autocast("cpu", torch.bfloat16):
        out = net(torch.rand(1, 3, 64, 64), torch.zeros(1, dtype=torch.long))
        assert net.g_a[0](torch.rand(1, 3, 8, 8)).dtype == torch.bfloat16  # autocast is on
    assert out["y_likelihoods"].dtype == out["z_likelihoods"].dtype == torch.float32


def test_init_starts_masked_model_and_baselines_from_a_gain_model(masked_setup, tmp_path):
    path, config = masked_setup
    torch.manual_seed(3)
    source = MeanScaleHyperprior(HyperpriorConfig(N=16, M=32, lambdas=(0.005, 0.05)))
    save_model_file(tmp_path / "gain.pt", "tiny-gain", source, {})
    config.update(init=str(tmp_path / "gain.pt"), steps=1, lr=1e-6)
    path.write_text(yaml.safe_dump(config))
    state = load_checkpoint(train(TrainConfig.from_yaml(path)))
    expected = source.g_s[2].weight
    assert torch.allclose(state["model"]["shared.g_s_2"], expected, atol=1e-4)
    assert torch.allclose(state["baselines"][1]["g_s.2.weight"], expected, atol=1e-4)
    assert torch.allclose(state["baselines"][1]["log_gain"][0], source.log_gain[1], atol=1e-4)
    save_model_file(
        tmp_path / "masked.pt",
        "tiny-masked",
        build_model(HyperpriorConfig.from_dict(config["model"])),
        {},
    )
    config["init"] = str(tmp_path / "masked.pt")
    path.write_text(yaml.safe_dump(config))
    (tmp_path / "run" / "checkpoint.pt").unlink()
    with pytest.raises(ValueError, match="is a masked model"):
        train(TrainConfig.from_yaml(path))


def test_a_masked_run_keeps_its_length_and_trains_on_from_its_model(masked_setup, tmp_path, capfd):
    path, config = masked_setup
    config["baselines"] = False
    path.write_text(yaml.safe_dump(config))
    ckpt = train(TrainConfig.from_yaml(path))
    config["steps"] = 12
    path.write_text(yaml.safe_dump(config))
    state = load_checkpoint(train(TrainConfig.from_yaml(path)))
    assert state["step"] == 8 and "keeps its length, 8 steps" in capfd.readouterr().err
    # A new chunk starts from the exported masked model, masks included.
    export_checkpoint(ckpt, tmp_path / "masked.pt", "tiny-masked")
    config.update(output="run2", init=str(tmp_path / "masked.pt"), lr=1e-9, steps=1)
    path.write_text(yaml.safe_dump(config))
    chunk = load_checkpoint(train(TrainConfig.from_yaml(path)))
    assert torch.equal(chunk["model"]["mask_g_a_2"], state["model"]["mask_g_a_2"])
    assert torch.allclose(chunk["model"]["shared.h_s_2"], state["model"]["shared.h_s_2"], atol=1e-6)
    config.update(output="run3", model={**config["model"], "densities": [0.75, 1.0]})
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="another config"):
        train(TrainConfig.from_yaml(path))


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).parents[2] / "configs").glob("*.yaml")), ids=lambda p: p.name
)
def test_shipped_configs_parse_and_build(path):
    config = TrainConfig.from_yaml(path)
    net = build_model(config.model)
    assert net.config == config.model and len(config.model.lambdas) >= 1


def test_a_diverging_run_keeps_its_last_good_checkpoint_and_export_refuses_nan(
    tiny_setup, tmp_path
):
    from nic.train.trainer import TrainingDivergedError

    path, config = tiny_setup
    ckpt = train(TrainConfig.from_yaml(path))  # 3 good steps
    config.update(steps=9, lr=1e30, lr_final=1e30)  # the weights blow up within a few steps
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(TrainingDivergedError, match="not finite"):
        train(TrainConfig.from_yaml(path))
    kept = load_checkpoint(ckpt)  # the last checkpoint whose weights were all finite
    assert kept["step"] < 9
    assert all(bool(torch.isfinite(v).all()) for v in kept["model"].values())

    state = torch.load(ckpt, weights_only=True)
    state["model"]["g_a.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match="not finite"):
        export_checkpoint(tmp_path / "nan.pt", tmp_path / "nan-model.pt", "nan-model")
    assert not (tmp_path / "nan-model.pt").exists()


def test_a_damaged_log_does_not_block_resuming(tiny_setup, tmp_path):
    path, config = tiny_setup
    train(TrainConfig.from_yaml(path))
    log = tmp_path / "run" / "log.csv"
    log.write_bytes(log.read_bytes() + b"\n\xff\xfe" + b"\0" * 64)
    config["steps"] = 4
    path.write_text(yaml.safe_dump(config))
    assert load_checkpoint(train(TrainConfig.from_yaml(path)))["step"] == 4
    assert b"\0" not in log.read_bytes()


def test_a_resumed_run_continues_its_rate_balance_exactly(tiny_setup, tmp_path):
    path, config = tiny_setup
    config["steps"] = 5
    path.write_text(yaml.safe_dump({**config, "output": "whole"}))
    whole = load_checkpoint(train(TrainConfig.from_yaml(path)))
    path.write_text(yaml.safe_dump({**config, "steps": 3}))
    ckpt = train(TrainConfig.from_yaml(path))
    assert load_checkpoint(ckpt)["rate_balance"]["mode"] == "loss"  # the default
    path.write_text(yaml.safe_dump(config))
    resumed = load_checkpoint(train(TrainConfig.from_yaml(path)))
    for key in ("average", "decayed"):
        assert torch.equal(resumed["rate_balance"][key], whole["rate_balance"][key])
    for name, weight in whole["model"].items():
        assert torch.equal(resumed["model"][name], weight), name
    slim_checkpoint(ckpt, tmp_path / "slim.pt")
    assert "rate_balance" in load_checkpoint(tmp_path / "slim.pt")

    state = load_checkpoint(ckpt)
    del state["rate_balance"]  # a checkpoint written before the setting existed
    torch.save(state, ckpt)
    config["steps"] = 6
    path.write_text(yaml.safe_dump(config))
    state = load_checkpoint(train(TrainConfig.from_yaml(path)))
    assert state["step"] == 6 and state["rate_balance"]["mode"] == "loss"


def test_a_masked_run_resumes_its_gradient_balance(masked_setup, capfd):
    path, config = masked_setup
    config.update(baselines=False, steps=3, checkpoint_every=2, rate_balance="gradient")
    path.write_text(yaml.safe_dump(config))
    ckpt = train(TrainConfig.from_yaml(path))
    state = load_checkpoint(ckpt)
    assert state["rate_balance"]["mode"] == "gradient"
    assert bool((state["rate_balance"]["average"] > 0).all())
    state["train_config"]["steps"] = 5  # the run was longer and stopped at step 3
    torch.save(state, ckpt)
    decayed = load_checkpoint(train(TrainConfig.from_yaml(path)))["rate_balance"]["decayed"]
    # Steps 0, 2, 4 trained rate point 0 and steps 1, 3 rate point 1; a balance that had not
    # been restored would have counted only steps 3 and 4.
    assert torch.allclose(decayed, torch.tensor([0.99**3, 0.99**2]))

    config.update(steps=5, rate_balance="loss")  # another balance starts afresh, and says so
    path.write_text(yaml.safe_dump(config))
    state = load_checkpoint(ckpt)
    state["train_config"]["steps"] = 6
    torch.save(state, ckpt)
    capfd.readouterr()
    state = load_checkpoint(train(TrainConfig.from_yaml(path)))
    assert "rate_balance is now loss" in capfd.readouterr().err
    assert state["rate_balance"]["mode"] == "loss"
    assert torch.allclose(state["rate_balance"]["decayed"], torch.tensor([1.0, 0.99]))  # step 5


def test_gradient_balance_gives_every_rate_point_a_comparable_gradient(astronaut):
    torch.manual_seed(0)
    config = HyperpriorConfig(
        N=16, M=32, lambdas=(0.0001, 0.3), mask_block=(8, 8), densities=(0.5, 1.0)
    )
    net = build_model(config)
    photo = torch.from_numpy(astronaut.copy()).permute(2, 0, 1).float() / 255
    x = torch.stack([photo[:, :64, :64], photo[:, 200:264, 200:264]])
    lambdas = torch.tensor(config.lambdas)

    def gradient_norm(rate: int) -> float:
        net.zero_grad()
        rd_terms(net(x, rate), x, lambdas[rate].expand(2))["loss"].mean().backward()
        return float(
            torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None]).norm()
        )

    raw = [gradient_norm(rate) for rate in (0, 1)]
    assert raw[1] > 100 * raw[0]  # the highest lambda's gradient dwarfs the lowest's
    balance = RateBalance("gradient", 2)
    step = TrainStep(TrainConfig(output="x", data=("d",), model=config))
    frozen = torch.optim.SGD(net.parameters(), lr=0.0)  # the weights stay as they are
    for _ in range(3):
        for rate in (0, 1):
            step(net, frozen, x, rate, lambdas[rate].expand(2), balance)
    weighted = [w * n for w, n in zip(balance.weights().tolist(), raw, strict=True)]
    assert weighted == pytest.approx([1.0, 1.0], rel=0.2)


def test_loss_balance_weighs_each_rate_point_by_its_own_running_loss():
    balance = RateBalance("loss", 3)
    losses = torch.tensor([0.2, 0.4, 6.0, 10.0], requires_grad=True)
    rate = torch.tensor([0, 0, 2, 2])
    # First observation: each rate point's items are divided by their own mean, so the batch
    # counts 1 whatever the lambdas; rate point 1, not seen yet, keeps weight 1.
    assert balance.objective(losses, rate).item() == pytest.approx(1.0)
    assert balance.weights().tolist() == pytest.approx([1 / 0.3, 1.0, 1 / 8.0])
    balance.objective(losses, rate).backward()
    expected = [1 / 0.3 / 4, 1 / 0.3 / 4, 1 / 32, 1 / 32]
    assert losses.grad.tolist() == pytest.approx(expected, rel=1e-5)
    restored = RateBalance("loss", 3)
    restored.load_state_dict(balance.state_dict())
    assert torch.equal(restored.weights(), balance.weights())
    with pytest.raises(ValueError, match="does not fit"):
        RateBalance("gradient", 3).load_state_dict(balance.state_dict())


def test_holdout_is_evaluated_into_its_own_csv_without_changing_training(tiny_setup, astronaut):
    path, config = tiny_setup
    holdout = path.parent / "holdout"
    holdout.mkdir()
    Image.fromarray(astronaut[300:400, 300:420]).save(holdout / "a.png")
    Image.fromarray(astronaut[:40, :40]).save(holdout / "small.png")  # under the patch: left out
    plain = load_checkpoint(train(TrainConfig.from_yaml(path)))
    config.update(output="run-holdout", holdout="holdout", holdout_every=2)
    path.write_text(yaml.safe_dump(config))
    ckpt = train(TrainConfig.from_yaml(path))
    for name, weight in load_checkpoint(ckpt)["model"].items():
        assert torch.equal(weight, plain["model"][name]), name  # same random streams
    with open(path.parent / "run-holdout" / "holdout.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["step", "rate_point", "loss", "bpp", "psnr_db"]
    assert [(r[0], r[1]) for r in rows[1:]] == [
        (s, k) for s in ("0", "2", "3") for k in ("0", "1")
    ]  # the start, every 2 steps and the chunk's end, at both rate points
    assert all(float(r[3]) > 0 and 5 < float(r[4]) < 60 for r in rows[1:])
    config["steps"] = 4  # resuming evaluates from the checkpoint on, never twice at a step
    path.write_text(yaml.safe_dump(config))
    train(TrainConfig.from_yaml(path))
    with open(path.parent / "run-holdout" / "holdout.csv") as f:
        assert [r[0] for r in list(csv.reader(f))[1:]] == ["0"] * 2 + ["2"] * 2 + ["3"] * 2 + [
            "4"
        ] * 2

    crops = holdout_crops([str(holdout)], 64)
    assert crops.shape == (1, 3, 64, 64) and crops.dtype == torch.uint8
    assert torch.equal(crops[0].permute(1, 2, 0), torch.from_numpy(astronaut[318:382, 328:392]))
    net = build_model(HyperpriorConfig(N=8, M=12, lambdas=(0.005, 0.05)))
    first = evaluate_holdout(net, crops, batch=1)
    assert evaluate_holdout(net, crops, batch=1) == first  # the same noise every time
    assert first[0]["bpp"] != first[1]["bpp"]  # each rate point at its own gain
    with pytest.raises(ValueError, match="no holdout image is at least 128x128"):
        holdout_crops([str(holdout)], 128)


def test_channels_last_trains_like_the_contiguous_format(masked_setup):
    path, config = masked_setup
    config.update(baselines=False, steps=2, lr=1e-6, rate_balance="none")
    path.write_text(yaml.safe_dump(config))
    contiguous = load_checkpoint(train(TrainConfig.from_yaml(path)))["model"]
    config.update(output="run-cl", channels_last=True)
    path.write_text(yaml.safe_dump(config))
    channels_last = load_checkpoint(train(TrainConfig.from_yaml(path)))["model"]
    assert channels_last["shared.g_s_2"].is_contiguous(memory_format=torch.channels_last)
    for name, weight in contiguous.items():
        assert torch.allclose(channels_last[name].float(), weight.float(), atol=1e-5), name


def test_holdout_leaves_a_masked_run_as_it_was(masked_setup, astronaut):
    path, config = masked_setup
    Image.fromarray(astronaut[:64, :64]).save(path.parent / "holdout.png")
    config.update(baselines=False, steps=4, checkpoint_every=2)
    path.write_text(yaml.safe_dump(config))
    plain = load_checkpoint(train(TrainConfig.from_yaml(path)))
    config.update(output="run-holdout", holdout="holdout.png", holdout_every=1)
    path.write_text(yaml.safe_dump(config))
    state = load_checkpoint(train(TrainConfig.from_yaml(path)))
    for name, weight in plain["model"].items():  # masks selected from the same input scales
        assert torch.equal(state["model"][name], weight), name
    for key in ("sums", "counts"):
        assert state["input_scales"][key].keys() == plain["input_scales"][key].keys()
    with open(path.parent / "run-holdout" / "holdout.csv") as f:
        assert len(list(csv.reader(f))) == 1 + 5 * 2  # steps 0 to 4, two rate points
