"""Training loop: AdamW, warm-up plus cosine schedule, periodic validation, atomic checkpoints.

Windows: each training example is ``block_size + 1`` consecutive symbols that start at a game start
(a ``;``), drawn uniformly over the game starts of the split, as the paper's data was laid out (every
block begins with ``;1.``). x is the window without its last symbol, y without its first.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import DataError, load_split
from .model import GPT, GPTConfig, load_state, save_weights
from .transcript import GAME_START_ID, VOCAB


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 16
    grad_accum: int = 1
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 5000
    max_iters: int = 5000
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_interval: int = 250
    eval_iters: int = 20
    log_interval: int = 10
    checkpoint_interval: int = 250
    seed: int = 1337

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown training setting(s): {', '.join(sorted(unknown))}")
        return cls(**data)


class TrainingError(ValueError):
    """Bad input to training (dataset, config, resume target)."""


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr`` at ``lr_decay_iters``, then flat."""
    if step < cfg.warmup_iters:
        return cfg.learning_rate * (step + 1) / (cfg.warmup_iters + 1)
    if step >= cfg.lr_decay_iters:
        return cfg.min_lr
    ratio = (step - cfg.warmup_iters) / max(1, cfg.lr_decay_iters - cfg.warmup_iters)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.learning_rate - cfg.min_lr)


class WindowSampler:
    """Draws windows of ``length`` symbols that begin at a game start."""

    def __init__(self, data: np.ndarray, length: int) -> None:
        if data.size == 0:
            raise TrainingError("the dataset split is empty")
        self.data = data
        self.length = length
        self.starts = np.flatnonzero(np.asarray(data) == GAME_START_ID)
        if self.starts.size == 0:
            raise TrainingError("the dataset has no game start (';') symbol")

    def batch(self, batch_size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        starts = self.starts[rng.integers(0, self.starts.size, size=batch_size)]
        index = starts[:, None] + np.arange(self.length)[None, :]
        windows = torch.from_numpy(np.take(self.data, index, mode="wrap").astype(np.int64))
        return windows[:, :-1], windows[:, 1:]


def _optimizer(model: GPT, cfg: TrainConfig, device: str) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    extra = {"fused": True} if device.startswith("cuda") else {}
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2), **extra)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


@torch.no_grad()
def estimate_loss(model: GPT, sampler: WindowSampler, cfg: TrainConfig, device: str) -> float:
    model.eval()
    rng = np.random.default_rng(0)  # the same validation windows every time
    losses = []
    for _ in range(cfg.eval_iters):
        x, y = sampler.batch(cfg.batch_size, rng)
        _, loss = model(x.to(device), y.to(device))
        losses.append(loss.item())
    model.train()
    return float(np.mean(losses))


def train(
    data_dir: Path,
    out_dir: Path,
    model_config: GPTConfig,
    cfg: TrainConfig,
    device: str = "cpu",
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (or resume) a model; returns the last logged record."""
    from tqdm import tqdm

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    meta_path = data_dir / "meta.json"
    if not meta_path.is_file():
        raise TrainingError(f"{data_dir}: not a prepared dataset (missing meta.json)")
    try:
        meta = json.loads(meta_path.read_text())
        train_data = load_split(data_dir, "train")
        val_data = load_split(data_dir, "val")
    except (DataError, json.JSONDecodeError) as exc:
        raise TrainingError(str(exc)) from None
    if meta.get("vocab") != VOCAB:
        raise TrainingError(f"{data_dir}: the dataset's vocabulary differs from the model's")

    checkpoint_path = out_dir / "checkpoint.pt"
    if resume:
        if not checkpoint_path.is_file():
            raise TrainingError(f"{out_dir}: nothing to resume (no checkpoint.pt)")
        saved = json.loads((out_dir / "config.json").read_text())
        if saved["model"] != model_config.to_dict():
            raise TrainingError(f"{out_dir}: the run holds a model of another shape; resume with its own config")

    torch.manual_seed(cfg.seed)
    model = GPT(model_config).to(device)
    optimizer = _optimizer(model, cfg, device)
    rng = np.random.default_rng(cfg.seed)
    step = 0
    if resume:
        state = torch.load(checkpoint_path, map_location=device, weights_only=True)
        load_state(model, state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(
        json.dumps({"model": model_config.to_dict(), "training": dataclasses.asdict(cfg), "vocab": VOCAB,
                    "data": str(data_dir)}, indent=2) + "\n"
    )
    train_sampler = WindowSampler(train_data, model_config.block_size + 1)
    val_sampler = WindowSampler(val_data, model_config.block_size + 1) if val_data.size else train_sampler

    def save(step: int) -> None:
        save_weights(model, out_dir / "model.safetensors")
        _atomic_torch_save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
             "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state()},
            checkpoint_path,
        )

    tokens_per_step = cfg.batch_size * cfg.grad_accum * model_config.block_size
    record: dict[str, Any] = {}
    model.train()
    with open(out_dir / "log.jsonl", "a") as log, tqdm(
        total=cfg.max_iters, initial=step, disable=None if progress else True, desc="train", unit="step"
    ) as bar:
        t0 = time.perf_counter()
        while step < cfg.max_iters:
            lr = learning_rate(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss_sum = 0.0
            for _ in range(cfg.grad_accum):
                x, y = train_sampler.batch(cfg.batch_size, rng)
                _, loss = model(x.to(device), y.to(device))
                (loss / cfg.grad_accum).backward()
                loss_sum += loss.item() / cfg.grad_accum
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            bar.update(1)
            last = step == cfg.max_iters
            if step % cfg.log_interval == 0 or step % cfg.eval_interval == 0 or last:
                dt = time.perf_counter() - t0
                record = {"step": step, "loss": round(loss_sum, 5), "lr": lr,
                          "tokens_per_s": round(tokens_per_step / max(dt, 1e-9), 1)}
                if step % cfg.eval_interval == 0 or last:
                    record["val_loss"] = round(estimate_loss(model, val_sampler, cfg, device), 5)
                log.write(json.dumps(record) + "\n")
                log.flush()
                bar.set_postfix(loss=f"{loss_sum:.3f}", tok_s=f"{record['tokens_per_s']:.0f}")
            if step % cfg.checkpoint_interval == 0 or last:
                save(step)
            t0 = time.perf_counter()
    return record
