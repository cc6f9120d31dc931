"""A run directory's files, written so that a kill at any moment leaves a usable run.

Every file is written whole or not at all (``transcend.files``). ``checkpoint.pt`` is the truth for ``--resume``: it holds the step, the
weights, the optimizer state and both configs. The data position and random state need no saving:
they are functions of (seed, step) (see ``loop.py``). ``model.safetensors`` is written after it; a kill
in between leaves weights one checkpoint older, rewritten at the next checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..files import atomic_write, read_jsonl, write_text
from ..model import GPT, GPTConfig, save_weights
from ..transcript import VOCAB
from .config import TrainConfig, TrainingError

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
LOG = "log.jsonl"
CHECKPOINT_FORMAT = 1


def write_run_config(out_dir: Path, model_cfg: GPTConfig, train_cfg: TrainConfig, data_dir: Path) -> None:
    config = {"model": model_cfg.to_dict(), "training": train_cfg.to_dict(), "vocab": VOCAB, "data": str(data_dir)}
    write_text(out_dir / CONFIG, json.dumps(config, indent=2) + "\n")


def save_checkpoint(out_dir: Path, model: GPT, optimizer: torch.optim.Optimizer, step: int,
                    model_cfg: GPTConfig, train_cfg: TrainConfig) -> None:
    state = {
        "format": CHECKPOINT_FORMAT,
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "model_config": model_cfg.to_dict(),
        "train_config": train_cfg.to_dict(),
    }
    atomic_write(out_dir / CHECKPOINT, lambda tmp: torch.save(state, tmp))
    save_weights(model, out_dir / WEIGHTS)


def shape_difference(saved: GPTConfig, wanted: GPTConfig) -> str:
    """The model-shape settings that differ (everything but dropout), as ``name saved -> wanted``."""
    a, b = saved.to_dict(), wanted.to_dict()
    return ", ".join(f"{k} {a[k]} -> {b[k]}" for k in a if k != "dropout" and a[k] != b[k])


def load_checkpoint(out_dir: Path, model_cfg: GPTConfig, device: torch.device) -> dict[str, Any]:
    """Read ``checkpoint.pt`` for ``--resume``, refusing one of another model shape."""
    path = out_dir / CHECKPOINT
    if not path.is_file():
        raise TrainingError(f"{out_dir}: nothing to resume (no {CHECKPOINT})")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises many types for a foreign or damaged file
        raise TrainingError(f"{path}: unreadable checkpoint ({str(exc).splitlines()[0]})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise TrainingError(f"{path}: not a transcend training checkpoint")
    saved = GPTConfig.from_dict(state["model_config"])
    diff = shape_difference(saved, model_cfg)
    if diff:
        raise TrainingError(
            f"{out_dir} holds a model of another shape ({diff}); resume with the run's own config "
            "(--resume without --preset/--config) or train into a new --out"
        )
    return state


def read_log(out_dir: Path) -> list[dict[str, Any]]:
    return read_jsonl(out_dir / LOG)


def truncate_log(out_dir: Path, step: int) -> list[dict[str, Any]]:
    """Drop log records after ``step`` (written by a run killed after its last checkpoint)."""
    records = [r for r in read_log(out_dir) if isinstance(r, dict) and r.get("step", 0) <= step]
    write_text(out_dir / LOG, "".join(json.dumps(r) + "\n" for r in records))
    return records
