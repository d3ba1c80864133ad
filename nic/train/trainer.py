"""`nic train CONFIG.yaml`: resumable training in chunks that add up.

The run folder holds `checkpoint.pt` (weights, optimizer, step, random states, accumulated wall
time) and `log.csv` (the loss curve). Starting again with the same config resumes from the
checkpoint, so short runs (a CPU afternoon, a 10-minute GPU lease) add up to one training.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import yaml
from tqdm import tqdm

from nic.models import HyperpriorConfig, MeanScaleHyperprior
from nic.train.data import PatchSampler, list_images
from nic.train.loss import rd_loss


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
    lr_final: float = 1e-5
    decay_from: float = 0.85
    checkpoint_every: int = 500
    seed: int = 0
    threads: int = 0

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        raw = yaml.safe_load(Path(path).read_text())
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping of training settings")
        known = set(cls.__dataclass_fields__)
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"{path}: unknown settings {sorted(unknown)}; known: {sorted(known)}")
        for key in ("output", "data"):
            if key not in raw:
                raise ValueError(f"{path}: missing required setting '{key}'")
        data = raw["data"] if isinstance(raw["data"], list) else [raw["data"]]
        base = Path(path).resolve().parent
        resolved = [str((base / d).resolve()) if not Path(d).is_absolute() else d for d in data]
        model = HyperpriorConfig.from_dict({**HyperpriorConfig().to_dict(), **raw.get("model", {})})
        output = raw["output"]
        output = output if Path(output).is_absolute() else str((base / output).resolve())
        return cls(**{**raw, "data": tuple(resolved), "model": model, "output": output})

    def learning_rate(self, step: int) -> float:
        """Constant, then a cosine decay to lr_final over the last (1 - decay_from) of the run."""
        start = int(self.decay_from * self.steps)
        if step < start:
            return self.lr
        t = (step - start) / max(1, self.steps - start)
        return self.lr_final + 0.5 * (self.lr - self.lr_final) * (1 + math.cos(math.pi * t))


def hardware_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def _save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _truncate_log(log_path: Path, step: int) -> None:
    """Drop log rows past the checkpoint's step (written after it, before an interruption)."""
    if not log_path.exists():
        return
    lines = log_path.read_text().splitlines(keepends=True)
    kept = lines[:1] + [ln for ln in lines[1:] if int(ln.split(",", 1)[0]) <= step]
    if len(kept) != len(lines):
        log_path.write_text("".join(kept))


FIT_WARMUP_STEPS = 20
FIT_PROBE_STEPS = 200


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train(
    config: TrainConfig, max_minutes: float | None = None, fit_minutes: float | None = None
) -> Path:
    """Train (or resume) until config.steps or the time budget; returns the checkpoint path.

    With `fit_minutes`, the run stops after that long and its length is fitted to it: the speed
    of the first few hundred steps of this chunk sets `steps`, so the learning-rate decay ends
    with the time budget (a device lease). Resuming such a run with a new budget fits again,
    which restarts the schedule from `lr` like a warm restart (Loshchilov & Hutter, ICLR 2017).
    """
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
    if device.type == "cuda":
        # TF32 matrix units for convolutions and matmuls: about 3x the fp32 rate on Hopper.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    sampler = PatchSampler(files, config.patch, config.min_scale, config.seed, device)
    net = MeanScaleHyperprior(config.model).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    step, wall = 0, 0.0
    history: list[dict] = []
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        if ckpt["model_config"] != config.model.to_dict():
            raise ValueError(f"{ckpt_path} was trained with another model config; use a new output")
        net.load_state_dict({k: v.float() for k, v in ckpt["model"].items()})
        if "optimizer" in ckpt:  # a checkpoint slimmed for transfer may have dropped it
            optimizer.load_state_dict(ckpt["optimizer"])
        sampler.set_state(ckpt["sampler_rng"])
        torch.set_rng_state(ckpt["torch_rng"].cpu())  # map_location moved it
        step, wall, history = ckpt["step"], ckpt["wall_time_s"], ckpt["hardware"]
    hardware = hardware_description(device)
    if not history or history[-1]["hardware"] != hardware:
        history.append({"hardware": hardware, "from_step": step})

    lambdas = torch.tensor(config.model.lambdas, device=device)
    log_path = out / "log.csv"
    _truncate_log(log_path, step)
    new_log = not log_path.exists()
    deadline = time.monotonic() + 60 * max_minutes if max_minutes else math.inf
    probe_from, probe_to = step + FIT_WARMUP_STEPS, step + FIT_WARMUP_STEPS + FIT_PROBE_STEPS
    probe_start = 0.0
    data_hash = hashlib.sha256("\n".join(f.name for f in files).encode()).hexdigest()[:16]

    def checkpoint() -> None:
        _save_atomic(
            {
                "model_config": config.model.to_dict(),
                "train_config": {**asdict(config), "model": config.model.to_dict()},
                "model": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "sampler_rng": sampler.state(),
                "torch_rng": torch.get_rng_state(),
                "step": step,
                "wall_time_s": wall,
                "hardware": history,
                "data": {"paths": list(config.data), "images": len(files), "names_sha": data_hash},
            },
            ckpt_path,
        )

    net.train()
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
            log.writerow(["step", "loss", "bpp", "psnr_db", "lr", "wall_time_s"])
        while step < config.steps and time.monotonic() < deadline:
            t0 = time.monotonic()
            lr = config.learning_rate(step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x = sampler.batch(config.batch).to(device)
            k = torch.randint(len(lambdas), (config.batch,), device=device)
            parts = rd_loss(net(x, k), x, lambdas[k])
            optimizer.zero_grad(set_to_none=True)
            parts["loss"].backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            step += 1
            wall += time.monotonic() - t0
            bar.update(1)
            if step % 50 == 0:
                psnr = -10 * math.log10(max(parts["mse"].item(), 1e-12))
                bar.set_postfix(loss=f"{parts['loss'].item():.3f}", bpp=f"{parts['bpp']:.3f}")
                log.writerow(
                    [
                        step,
                        f"{parts['loss'].item():.5f}",
                        f"{parts['bpp'].item():.5f}",
                        f"{psnr:.3f}",
                        f"{lr:.3g}",
                        f"{wall:.1f}",
                    ]
                )
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
            if step % config.checkpoint_every == 0:
                checkpoint()
    checkpoint()
    return ckpt_path


def slim_checkpoint(
    checkpoint: str | Path, output: str | Path, dtype: torch.dtype = torch.float16
) -> None:
    """Copy a checkpoint without optimizer state and with weights in `dtype`, for transfer.

    Training resumes from the slim copy (with a fresh optimizer) and `nic export` reads it.
    """
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    ckpt.pop("optimizer", None)
    ckpt["model"] = {
        k: v.to(dtype) if v.is_floating_point() else v for k, v in ckpt["model"].items()
    }
    _save_atomic(ckpt, Path(output))
