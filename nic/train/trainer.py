"""`nic train CONFIG.yaml`: resumable training in chunks that add up.

The run folder holds `checkpoint.pt` (weights, optimizer, step, random states, running
statistics, accumulated wall time), `log.csv` (the loss curve) and, with a holdout set,
`holdout.csv` (its loss at every rate point). Starting again with the same config resumes from the
checkpoint, so short runs (a CPU afternoon, a 10-minute GPU lease) add up to one training.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import yaml
from tqdm import tqdm

from nic import zoo
from nic.model_file import MAX_CHANNELS
from nic.models import (
    DOWNSAMPLING,
    ENTROPY_MODELS,
    HyperpriorConfig,
    MaskedMultiRateHyperprior,
    MeanScaleHyperprior,
    build_model,
    model_class,
)
from nic.train.checkpoint import (
    CheckpointError,
    damaged,
    load_checkpoint,
    load_weights,
    save_checkpoint,
)
from nic.train.data import PatchSampler, list_images, read_training_image
from nic.train.loss import DISTORTIONS, RATE_BALANCES, RateBalance, rd_terms
from nic.train.prune_and_grow import (
    SCHEDULES,
    InputScales,
    Phase,
    freeze_gradients,
    grow,
    initialize_from,
    mask_update_due,
    phase_at,
    phase_parameters,
    prune,
    select_nested_masks,
)


@dataclass(frozen=True)
class TrainConfig:
    """What a training run does; read from YAML (see docs/training.md)."""

    output: str
    data: tuple[str, ...]
    model: HyperpriorConfig = field(default_factory=HyperpriorConfig)
    steps: int = 100_000
    batch: int = 8
    patch: int = 256
    min_scale: float = 0.5
    lr: float = 1e-4
    """Adam's learning rate. It does not follow `batch`: when changing the batch, scale it by
    the square root of the batch ratio (the square-root rule for Adam: Malladi et al., NeurIPS
    2022), e.g. 1e-4 at batch 16 -> 1.4e-4 at 32, 2e-4 at 64."""
    lr_final: float = 1e-5
    decay_from: float = 0.85
    checkpoint_every: int = 500
    seed: int = 0
    threads: int = 0
    init: str | None = None
    """Start from a trained gain model: a model file (.pt) or a zoo name."""
    precision: str = "tf32"
    """On a GPU: fp32, tf32 (TF32 matrix units) or bf16 (autocast, rates in float32)."""
    grow_fraction: float = 0.5
    """Masked models: share of each prune-and-grow phase trained before pruning."""
    baselines: bool = False
    """Masked models: also train one separate single-rate model per rate point."""
    schedule: str = "joint"
    """Masked models: "joint" (all rate points train throughout; nested masks re-selected by
    block saliency during the first grow_fraction) or "progressive" (prune-and-grow, one phase per
    rate point, earlier rate points frozen): nic/train/prune_and_grow.py."""
    rate_balance: str = "loss"
    """Per-rate-point loss weights (nic/train/loss.py, RateBalance): "loss" (each rate point's
    loss divided by its running mean), "gradient" (by the running norm of its gradient; needs one
    rate point per step, a masked model) or "none" (the loss as is, as runs before this setting
    trained). "loss" measured best on a CPU (docs/training.md)."""
    compile: str = "none"
    """Capture the forward pass and loss with torch.compile in this mode ("default",
    "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"); "none" runs eagerly."""
    channels_last: bool = False
    """Hold weights and patches in channels-last memory format."""
    holdout: tuple[str, ...] | None = None
    """Image files or folders whose centre crops are evaluated at every rate point (holdout.csv)."""
    holdout_every: int | None = None
    """Steps between holdout evaluations (None: checkpoint_every)."""

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        """Read a training config; raises ValueError, naming the file and the setting, for one
        that is not YAML, misses or misspells a setting, or has a value of the wrong type or out
        of range."""
        try:
            raw = yaml.safe_load(Path(path).read_text())
        except yaml.YAMLError as e:
            where = getattr(e, "problem_mark", None)
            line = f" (line {where.line + 1})" if where else ""
            raise ValueError(f"{path}: not valid YAML{line}") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping of training settings")
        known = set(cls.__dataclass_fields__)
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"{path}: unknown settings {sorted(unknown)}; known: {sorted(known)}")
        for key in ("output", "data"):
            if key not in raw:
                raise ValueError(f"{path}: missing required setting '{key}'")
        _check_settings(raw, path)
        base = Path(path).resolve().parent

        def resolved(paths: str | list[str]) -> tuple[str, ...]:
            paths = paths if isinstance(paths, list) else [paths]
            return tuple(p if Path(p).is_absolute() else str((base / p).resolve()) for p in paths)

        model = HyperpriorConfig.from_dict({**HyperpriorConfig().to_dict(), **raw.get("model", {})})
        output = raw["output"]
        output = output if Path(output).is_absolute() else str((base / output).resolve())
        holdout = resolved(raw["holdout"]) if raw.get("holdout") is not None else None
        return cls(
            **{**raw, "data": resolved(raw["data"]), "model": model, "output": output,
               "holdout": holdout}
        )  # fmt: skip

    def learning_rate(self, step: int) -> float:
        """Constant, then a cosine decay to lr_final over the last (1 - decay_from) of the run."""
        start = int(self.decay_from * self.steps)
        if step < start:
            return self.lr
        t = (step - start) / max(1, self.steps - start)
        return self.lr_final + 0.5 * (self.lr - self.lr_final) * (1 + math.cos(math.pi * t))


PRECISIONS = ("fp32", "tf32", "bf16")
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")
"""Modes that replay CUDA graphs, whose outputs the next replay overwrites."""


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: object) -> bool:
    return isinstance(value, str) and value != ""


SETTING_RULES = {
    "output": ("a folder name", _text),
    "data": ("a folder or a list of folders", lambda v: _text(v) or (
        isinstance(v, list) and v != [] and all(map(_text, v)))),
    "steps": ("a whole number >= 1", lambda v: _whole(v) and v >= 1),
    "batch": ("a whole number >= 1", lambda v: _whole(v) and v >= 1),
    "patch": (f"a multiple of {DOWNSAMPLING}",
              lambda v: _whole(v) and v >= DOWNSAMPLING and v % DOWNSAMPLING == 0),
    "min_scale": ("a number in (0, 1]", lambda v: _number(v) and 0 < v <= 1),
    "lr": ("a number > 0", lambda v: _number(v) and v > 0),
    "lr_final": ("a number >= 0", lambda v: _number(v) and v >= 0),
    "decay_from": ("a number in [0, 1]", lambda v: _number(v) and 0 <= v <= 1),
    "checkpoint_every": ("a whole number >= 1", lambda v: _whole(v) and v >= 1),
    "seed": ("a whole number >= 0", lambda v: _whole(v) and v >= 0),
    "threads": ("a whole number >= 0", lambda v: _whole(v) and v >= 0),
    "init": ("a model file or zoo name", lambda v: v is None or _text(v)),
    "precision": ("one of " + ", ".join(PRECISIONS), lambda v: v in PRECISIONS),
    "grow_fraction": ("a number in (0, 1)", lambda v: _number(v) and 0 < v < 1),
    "baselines": ("true or false", lambda v: isinstance(v, bool)),
    "schedule": ("one of " + ", ".join(SCHEDULES), lambda v: v in SCHEDULES),
    "rate_balance": ("one of " + ", ".join(RATE_BALANCES), lambda v: v in RATE_BALANCES),
    "compile": ("one of " + ", ".join(COMPILE_MODES), lambda v: v in COMPILE_MODES),
    "channels_last": ("true or false", lambda v: isinstance(v, bool)),
    "holdout": ("a folder or a list of folders", lambda v: v is None or _text(v) or (
        isinstance(v, list) and v != [] and all(map(_text, v)))),
    "holdout_every": ("a whole number >= 1", lambda v: v is None or (_whole(v) and v >= 1)),
    "model": ("a mapping of model settings", lambda v: isinstance(v, dict)),
}  # fmt: skip
MODEL_RULES = {
    "N": (f"a whole number from 1 to {MAX_CHANNELS}", lambda v: _whole(v) and
          1 <= v <= MAX_CHANNELS),
    "M": (f"a whole number from 1 to {MAX_CHANNELS}", lambda v: _whole(v) and
          1 <= v <= MAX_CHANNELS),
    "lambdas": ("a list of numbers > 0", lambda v: isinstance(v, list) and v != [] and all(
        _number(x) and x > 0 for x in v)),
    "distortion": ("one of " + ", ".join(DISTORTIONS), lambda v: v in DISTORTIONS),
    "mask_block": ("two whole numbers >= 1", lambda v: v is None or (
        isinstance(v, list) and len(v) == 2 and all(_whole(x) and x >= 1 for x in v))),
    "densities": ("a list of numbers in (0, 1]", lambda v: isinstance(v, list) and all(
        _number(x) and 0 < x <= 1 for x in v)),
    "entropy_model": ("one of " + ", ".join(ENTROPY_MODELS), lambda v: v in ENTROPY_MODELS),
    "groups": ("a list of whole numbers >= 1", lambda v: isinstance(v, list) and all(
        _whole(x) and x >= 1 for x in v)),
}  # fmt: skip


def _check_settings(raw: dict, path: str | Path) -> None:
    """Each setting's type and range, so that a bad one fails here, not hours into a run."""
    for key, (expected, valid) in SETTING_RULES.items():
        if key in raw and not valid(raw[key]):
            raise ValueError(f"{path}: {key} must be {expected}, not {raw[key]!r}")
    model = raw.get("model", {})
    unknown = set(model) - set(MODEL_RULES)
    if unknown:
        raise ValueError(f"{path}: unknown model settings {sorted(unknown)}")
    for key, (expected, valid) in MODEL_RULES.items():
        if key in model and not valid(model[key]):
            raise ValueError(f"{path}: model.{key} must be {expected}, not {model[key]!r}")


def hardware_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


class TrainingDivergedError(ValueError):
    """The weights became NaN or infinite; nothing is saved over the last good checkpoint."""


def _truncate_log(log_path: Path, step: int) -> None:
    """Drop log rows past the checkpoint's step (written after it, before an interruption), and
    rows a crash left damaged (cut short, zero-filled)."""
    if not log_path.exists():
        return
    lines = log_path.read_bytes().decode("utf-8", "replace").splitlines(keepends=True)

    def kept_row(line: str) -> bool:
        first = line.split(",", 1)[0]
        return first.isdigit() and int(first) <= step and line.endswith("\n")

    kept = lines[:1] + [ln for ln in lines[1:] if kept_row(ln)]
    if len(kept) != len(lines):
        log_path.write_text("".join(kept))


FIT_WARMUP_STEPS = 20
FIT_PROBE_STEPS = 200


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _check_schedule(config: TrainConfig) -> None:
    if config.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {config.precision!r}")
    if config.baselines and not config.model.masked:
        raise ValueError("baselines: true needs a masked model (model.mask_block)")
    if config.schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, not {config.schedule!r}")
    if not 0 < config.grow_fraction < 1:
        raise ValueError("grow_fraction must be between 0 and 1")
    if config.rate_balance not in RATE_BALANCES:
        raise ValueError(
            f"rate_balance must be one of {RATE_BALANCES}, not {config.rate_balance!r}"
        )
    if config.rate_balance == "gradient" and not config.model.masked:
        raise ValueError(
            "rate_balance: gradient needs one rate point per step (a masked model); a gain "
            "model's batches mix rate points: use loss or none"
        )
    if config.compile not in COMPILE_MODES:
        raise ValueError(f"compile must be one of {COMPILE_MODES}, not {config.compile!r}")
    if config.compile in CUDA_GRAPH_MODES and config.model.masked:
        raise ValueError(
            f"compile: {config.compile} replays CUDA graphs, which overwrite the input scales a "
            "masked model keeps across steps: use default or max-autotune-no-cudagraphs"
        )


def _initial_weights(config: TrainConfig) -> MeanScaleHyperprior | MaskedMultiRateHyperprior:
    """The trained model named by `init` (a model file or a zoo name): a gain model, or a masked
    model of the same config to train on (a new chunk of an earlier masked run)."""
    source = config.init
    model = zoo.load(source)
    if model.masked and model.net.config != config.model:
        raise ValueError(f"init: {source} is a masked model of another config")
    if model.masked and config.baselines:
        raise ValueError(f"init: {source} is a masked model; baselines start from a gain model")
    return model.net


def _compile_errors() -> tuple[type[Exception], ...]:
    """What torch.compile raises when it cannot compile here (imported only when one is raised)."""
    from torch._dynamo.exc import TorchDynamoException
    from torch._inductor.exc import CppCompileError, InvalidCxxCompiler

    return TorchDynamoException, CppCompileError, InvalidCxxCompiler


def _forward_terms(
    model: torch.nn.Module,
    x: torch.Tensor,
    rate: torch.Tensor | int,
    lambdas: torch.Tensor,
    distortion: str,
    bf16: bool,
) -> dict[str, torch.Tensor]:
    """A training pass and its per-item loss terms: what `compile` captures."""
    with torch.autocast(x.device.type, torch.bfloat16, enabled=bf16):
        return rd_terms(model(x, rate), x, lambdas, distortion)


class TrainStep:
    """One training step as `nic train` runs it: forward pass and loss (captured by torch.compile
    when config.compile asks), the rate balance's weighting, backward, clipping to norm 1 and the
    optimizer's update.

    When compiling fails here (the CPU backend needs a C++ compiler and the Python headers), the
    step says so in one line on stderr and runs eagerly from then on.
    """

    def __init__(self, config: TrainConfig) -> None:
        self.distortion = config.model.distortion
        self.bf16 = config.precision == "bf16"
        self.memory_format = (
            torch.channels_last if config.channels_last else torch.contiguous_format
        )
        self.forward = _forward_terms
        self.compiled = config.compile != "none"
        if self.compiled:
            # One graph per rate point of a masked model (the rate selects its parameters), two
            # while its input scales are empty and then not, and one per baseline model.
            limits = torch._dynamo.config
            name = "recompile_limit" if hasattr(limits, "recompile_limit") else "cache_size_limit"
            needed = 3 * len(config.model.lambdas) + 2
            setattr(limits, name, max(getattr(limits, name), needed))
            self.forward = torch.compile(_forward_terms, mode=config.compile, dynamic=False)

    def __call__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        x: torch.Tensor,
        rate: torch.Tensor | int,
        lambdas: torch.Tensor,
        balance: RateBalance | None = None,
        before_clip: Callable[[], None] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Train `model` on the (B, 3, P, P) batch `x` at `rate` (one per item, or one for the
        batch of a masked model) with (B,) `lambdas`; returns the batch means of the loss, bpp
        and mse (0..1 scale), detached. `before_clip` may change the gradients first."""
        x = x.contiguous(memory_format=self.memory_format)
        saved = balance.state_dict() if balance is not None and self.compiled else None
        try:
            terms = self._backward(model, optimizer, x, rate, lambdas, balance)
        except _compile_errors() as e:
            if not self.compiled:
                raise
            reason = " ".join(str(e).split())[:160]
            print(
                f"nic train: torch.compile failed here, training eagerly ({reason})",
                file=sys.stderr,
            )
            self.forward, self.compiled = _forward_terms, False
            if saved is not None:
                balance.load_state_dict(saved)
            terms = self._backward(model, optimizer, x, rate, lambdas, balance)
        if before_clip is not None:
            before_clip()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        if balance is not None:
            balance.record_gradient(rate, norm)
        optimizer.step()
        return {name: value.detach().mean() for name, value in terms.items()}

    def _backward(self, model, optimizer, x, rate, lambdas, balance) -> dict[str, torch.Tensor]:
        terms = self.forward(model, x, rate, lambdas, self.distortion, self.bf16)
        optimizer.zero_grad(set_to_none=True)
        losses = terms["loss"]
        (losses.mean() if balance is None else balance.objective(losses, rate)).backward()
        return terms


HOLDOUT_SEED = 0
"""Seed of the quantization noise in holdout passes, so that every evaluation draws the same."""


def holdout_crops(paths: list[str], patch: int) -> torch.Tensor:
    """(N, 3, patch, patch) uint8 centre crops of the images under `paths` that are at least
    patch x patch (smaller ones are left out). Raises FileNotFoundError when there are no images
    and ValueError when none is large enough."""
    crops = []
    try:
        files = list_images(paths)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"holdout: {e}") from None
    for f in files:
        a = read_training_image(f)
        h, w = a.shape[:2]
        if min(h, w) >= patch:
            top, left = (h - patch) // 2, (w - patch) // 2
            crops.append(torch.from_numpy(a[top : top + patch, left : left + patch].copy()))
    if not crops:
        raise ValueError(f"no holdout image is at least {patch}x{patch}")
    return torch.stack(crops).permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def evaluate_holdout(
    net: MeanScaleHyperprior | MaskedMultiRateHyperprior,
    crops: torch.Tensor,
    batch: int,
    distortion: str = "mse",
    bf16: bool = False,
    memory_format: torch.memory_format = torch.contiguous_format,
    scales: InputScales | None = None,
) -> list[dict[str, float]]:
    """The training loss of `net` on the uint8 (N, 3, P, P) `crops` at each rate point: one dict
    per rate point with its mean loss, bpp and the PSNR (dB) of the mean MSE.

    The pass is the training pass (rd_terms; noise for the likelihoods drawn from HOLDOUT_SEED,
    so that every evaluation draws the same, and the random state of training left as it was)
    without gradients, in eval mode, in batches of `batch`. A masked model's `scales`, which its
    training pass records, are restored afterwards.
    """
    device = crops.device
    lambdas = net.config.lambdas
    saved = copy.deepcopy(scales.state_dict()) if scales is not None else None
    was_training = net.training
    net.eval()
    rows = []
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda, device_type=device.type):
        torch.manual_seed(HOLDOUT_SEED)
        for rate in range(len(lambdas)):
            sums = {"loss": 0.0, "bpp": 0.0, "mse": 0.0}
            for chunk in crops.split(batch):
                x = (chunk.float() / 255).contiguous(memory_format=memory_format)
                k = rate if net.config.masked else torch.full((len(x),), rate, device=device)
                lam = torch.full((len(x),), lambdas[rate], device=device)
                terms = _forward_terms(net, x, k, lam, distortion, bf16)
                for name in sums:
                    sums[name] += float(terms[name].float().sum())
            loss, bpp, mse = (sums[name] / len(crops) for name in ("loss", "bpp", "mse"))
            psnr = -10 * math.log10(max(mse, 1e-12))
            rows.append({"rate_point": rate, "loss": loss, "bpp": bpp, "psnr_db": psnr})
    net.train(was_training)
    if saved is not None:
        scales.load_state_dict(saved)
    return rows


def train(
    config: TrainConfig, max_minutes: float | None = None, fit_minutes: float | None = None
) -> Path:
    """Train (or resume) until config.steps or the time budget; returns the checkpoint path.

    With `fit_minutes`, the run stops after that long and its length is fitted to it: the speed
    of the first few hundred steps of this chunk sets `steps`, so the learning-rate decay ends
    with the time budget (a device lease). Resuming such a run with a new budget fits again,
    which restarts the schedule from `lr` like a warm restart (Loshchilov & Hutter, ICLR 2017).

    A masked model trains one rate point per step, jointly or in progressive phases
    (nic/train/prune_and_grow.py); with `baselines`, a separate single-rate model per rate point
    trains on the same batches whenever its rate point does, for the masked-versus-separate
    comparison. With `holdout`, its images are evaluated (evaluate_holdout) at the start of a
    new run, every `holdout_every` steps and when a chunk ends, into holdout.csv.

    Raises ValueError for invalid settings or time budgets or a checkpoint of another model
    config, and CheckpointError (a ValueError) when the output folder's checkpoint is damaged or
    holds anything but tensors and plain values; the checkpoint is left as it is then.
    """
    for name, minutes in (("max_minutes", max_minutes), ("fit_minutes", fit_minutes)):
        if minutes is not None and not (_number(minutes) and minutes > 0):
            raise ValueError(f"{name} must be a number > 0, not {minutes!r}")
    _check_schedule(config)
    masked = config.model.masked
    if fit_minutes is not None:
        max_minutes = fit_minutes
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"

    files = list_images(list(config.data))
    holdout = None
    if config.holdout:
        holdout = holdout_crops(list(config.holdout), config.patch).to(device)
    if device.type == "cuda":
        # TF32 matrix units for convolutions and matmuls: about 3x the fp32 rate on Hopper.
        tf32 = config.precision != "fp32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = True
    sampler = PatchSampler(files, config.patch, config.min_scale, config.seed, device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    net = build_model(config.model).to(device, memory_format=memory_format)
    baselines = []
    if config.baselines:
        baselines = [
            model_class(config.model)(config.model.gain_model((lam,))).to(
                device, memory_format=memory_format
            )
            for lam in config.model.lambdas
        ]
    scales = InputScales(net) if masked else None
    balance = None
    if config.rate_balance != "none":
        balance = RateBalance(config.rate_balance, len(config.model.lambdas), device)
    step, wall = 0, 0.0
    history: list[dict] = []
    ckpt: dict = {}
    if ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, map_location=device)
        if ckpt["model_config"] != config.model.to_dict():
            raise ValueError(f"{ckpt_path} was trained with another model config; use a new output")
        load_weights(net, ckpt["model"], ckpt_path)
        if baselines and "baselines" not in ckpt:
            raise ValueError(f"{ckpt_path} holds no baselines (slimmed for transfer?)")
        try:
            for b, state in zip(baselines, ckpt.get("baselines", []), strict=True):
                load_weights(b, state, ckpt_path)
            if scales is not None and "input_scales" in ckpt:
                scales.load_state_dict(ckpt["input_scales"])
            stored_balance = ckpt.get("rate_balance")
            if balance is not None and stored_balance is not None:
                if stored_balance["mode"] == balance.mode:
                    balance.load_state_dict(stored_balance)
                else:
                    print(
                        f"nic train: rate_balance is now {balance.mode} (the checkpoint's was "
                        f"{stored_balance['mode']}): its running means start afresh",
                        file=sys.stderr,
                    )
            sampler.set_state(ckpt["sampler_rng"])
            torch.set_rng_state(ckpt["torch_rng"].cpu())  # map_location moved it
            steps = int(ckpt["train_config"]["steps"])
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
            raise damaged(ckpt_path, e) from None
        step, wall, history = ckpt["step"], ckpt["wall_time_s"], ckpt["hardware"]
        if masked and fit_minutes is not None:
            raise ValueError(
                "a masked run keeps the length it was fitted to (its mask schedule depends on "
                "it): resume it without --fit-minutes (use --max-minutes)"
            )
        if masked and steps != config.steps:
            print(
                f"nic train: a masked run keeps its length, {steps} steps (the config says "
                f"{config.steps}); to train on, start a new run with init: this run's exported "
                "model",
                file=sys.stderr,
            )
            config = replace(config, steps=steps)
    elif config.init:
        source = _initial_weights(config).to(device)
        for target in (net, *baselines):
            initialize_from(target, source)
    hardware = hardware_description(device)
    if not history or history[-1]["hardware"] != hardware:
        history.append({"hardware": hardware, "from_step": step})

    joint = masked and config.schedule == "joint"

    def phase() -> Phase | None:
        """The progressive schedule's phase (None: every rate point trains throughout)."""
        if not masked or joint:
            return None
        return phase_at(step, config.steps, net.num_rate_points, config.grow_fraction)

    def optimizers() -> tuple[torch.optim.Optimizer, torch.optim.Optimizer | None]:
        """Adam for what the current step trains (a new one at each prune-and-grow phase)."""
        current = phase()
        params = net.parameters() if current is None else phase_parameters(net, current.rate)
        if not baselines:
            baseline = None
        elif current is None:
            baseline = [p for b in baselines for p in b.parameters()]
        else:
            baseline = baselines[current.rate].parameters()
        return (
            torch.optim.Adam(params, lr=config.lr),
            torch.optim.Adam(baseline, lr=config.lr) if baseline is not None else None,
        )

    optimizer, baseline_optimizer = optimizers()
    current = phase()
    if "optimizer" in ckpt and (current is None or step != current.start):
        try:  # a slim checkpoint has dropped the optimizer state
            optimizer.load_state_dict(ckpt["optimizer"])
            if baseline_optimizer is not None:
                baseline_optimizer.load_state_dict(ckpt["baseline_optimizer"])
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
            raise damaged(ckpt_path, e) from None

    lambdas = torch.tensor(config.model.lambdas, device=device)
    log_path = out / "log.csv"
    _truncate_log(log_path, step)
    new_log = not log_path.exists()
    holdout_path = out / "holdout.csv"
    _truncate_log(holdout_path, step if ckpt else -1)  # a new run evaluates its step 0 anew
    holdout_every = config.holdout_every or config.checkpoint_every
    holdout_step = step if ckpt else -1  # a checkpoint's step was evaluated before it
    deadline = time.monotonic() + 60 * max_minutes if max_minutes else math.inf
    probe_from, probe_to = step + FIT_WARMUP_STEPS, step + FIT_WARMUP_STEPS + FIT_PROBE_STEPS
    probe_start = 0.0
    data_hash = hashlib.sha256("\n".join(f.name for f in files).encode()).hexdigest()[:16]
    train_step = TrainStep(config)

    def evaluate() -> None:
        """Evaluate the holdout crops at every rate point into holdout.csv (once per step)."""
        nonlocal holdout_step
        if holdout is None or holdout_step == step:
            return
        new = not holdout_path.exists()
        rows = evaluate_holdout(
            net, holdout, config.batch, config.model.distortion,
            config.precision == "bf16", memory_format, scales,
        )  # fmt: skip
        with open(holdout_path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["step", "rate_point", "loss", "bpp", "psnr_db"])
            for r in rows:
                loss, bpp, psnr = r["loss"], r["bpp"], r["psnr_db"]
                writer.writerow([step, r["rate_point"], f"{loss:.5f}", f"{bpp:.5f}", f"{psnr:.3f}"])
        holdout_step = step

    def checkpoint() -> None:
        if not all(bool(torch.isfinite(v).all()) for v in net.state_dict().values()):
            raise TrainingDivergedError(
                f"training diverged: the weights are not finite at step {step}; the last "
                f"checkpoint in {out} is kept (lower the learning rate)"
            )
        evaluate()
        save_checkpoint(
            {
                "model_config": config.model.to_dict(),
                "train_config": {**asdict(config), "model": config.model.to_dict()},
                "model": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                **(
                    {
                        "baselines": [b.state_dict() for b in baselines],
                        "baseline_optimizer": baseline_optimizer.state_dict(),
                    }
                    if baselines
                    else {}
                ),
                **({"input_scales": scales.state_dict()} if scales is not None else {}),
                **({"rate_balance": balance.state_dict()} if balance is not None else {}),
                "sampler_rng": sampler.state(),
                "torch_rng": torch.get_rng_state(),
                "step": step,
                "wall_time_s": wall,
                "hardware": history,
                "data": {"paths": list(config.data), "images": len(files), "names_sha": data_hash},
            },
            ckpt_path,
        )

    if not ckpt:
        evaluate()
    net.train()
    columns = ["step", "loss", "bpp", "psnr_db", "lr", "wall_time_s"]
    if masked:
        columns += ["rate_point", "mask_density"]
    if baselines:
        columns += ["baseline_loss", "baseline_bpp", "baseline_psnr_db"]
    with (
        open(log_path, "a", newline="") as log_file,
        tqdm(
            total=config.steps,
            initial=step,
            desc="train",
            unit="step",
            dynamic_ncols=True,
            mininterval=0.1 if sys.stderr.isatty() else 30,
        ) as bar,
    ):
        log = csv.writer(log_file)
        if new_log:
            log.writerow(columns)
        while step < config.steps and time.monotonic() < deadline:
            t0 = time.monotonic()
            current = phase()
            if current is not None and step == current.start:
                grow(net, current.rate)
                scales.reset()
                optimizer, baseline_optimizer = optimizers()
            if current is not None and step == current.prune_at:
                prune(net, current.rate, scales)
            if joint and mask_update_due(step, config.steps, config.grow_fraction):
                select_nested_masks(net, scales)
                scales.reset()
            if current is None:
                lr = config.learning_rate(step)
            else:
                lr = replace(config, steps=current.length).learning_rate(current.local_step(step))
            for opt in (optimizer, baseline_optimizer):
                for group in opt.param_groups if opt is not None else ():
                    group["lr"] = lr
            x = sampler.batch(config.batch).to(device)
            if not masked:
                k = torch.randint(len(lambdas), (config.batch,), device=device)
                parts = train_step(net, optimizer, x, k, lambdas[k], balance)
            else:
                rate = current.rate if current is not None else step % len(lambdas)
                lam = lambdas[rate].expand(config.batch)
                freeze = None if joint else lambda: freeze_gradients(net, rate)  # noqa: B023
                parts = train_step(net, optimizer, x, rate, lam, balance, freeze)
                if baselines:
                    zeros = torch.zeros(config.batch, dtype=torch.long, device=device)
                    base = train_step(baselines[rate], baseline_optimizer, x, zeros, lam)
            step += 1
            wall += time.monotonic() - t0
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{parts['loss'].item():.3f}", bpp=f"{parts['bpp']:.3f}")
                row = [step, *_loss_fields(parts), f"{lr:.3g}", f"{wall:.1f}"]
                if masked:
                    row += [rate, f"{net.density(rate):.3f}"]
                if baselines:
                    row += _loss_fields(base)
                log.writerow(row)
                log_file.flush()
            if fit_minutes is not None and step == probe_from:
                _synchronize(device)
                probe_start = time.monotonic()
            elif fit_minutes is not None and probe_from < step <= probe_to:
                # The probe ends after FIT_PROBE_STEPS or a tenth of the budget, if sooner.
                if step == probe_to or time.monotonic() - probe_start > 6 * fit_minutes:
                    _synchronize(device)
                    rate = (step - probe_from) / (time.monotonic() - probe_start)
                    left = deadline - time.monotonic()
                    config = replace(config, steps=step + int(0.98 * rate * left))
                    bar.total = config.steps
                    bar.write(f"fitted to {fit_minutes} min at {rate:.1f} steps/s: {config.steps}")
                    probe_to = step
            if step % holdout_every == 0:
                evaluate()
            if step % config.checkpoint_every == 0:
                checkpoint()
    checkpoint()
    return ckpt_path


def _loss_fields(parts: dict[str, torch.Tensor]) -> list[str]:
    psnr = -10 * math.log10(max(parts["mse"].item(), 1e-12))
    return [f"{parts['loss'].item():.5f}", f"{parts['bpp'].item():.5f}", f"{psnr:.3f}"]


def slim_checkpoint(
    checkpoint: str | Path, output: str | Path, dtype: torch.dtype = torch.float16
) -> None:
    """Copy a checkpoint without optimizer state or baselines, weights in `dtype`, for transfer.

    Training resumes from the slim copy (with a fresh optimizer) and `nic export` reads it.
    Raises CheckpointError (a ValueError) when `checkpoint` is missing, damaged, not a training
    checkpoint or holds anything but tensors and plain values; nothing is written then.
    """
    ckpt = load_checkpoint(checkpoint)
    for key in ("optimizer", "baselines", "baseline_optimizer"):
        ckpt.pop(key, None)
    try:
        ckpt["model"] = {
            k: v.to(dtype) if v.is_floating_point() else v for k, v in ckpt["model"].items()
        }
    except AttributeError as e:  # an entry that is not a tensor
        raise damaged(checkpoint, e) from None
    save_checkpoint(ckpt, output)
