"""The training loop: one process or ``torchrun`` DDP, CPU or CUDA, exactly resumable.

Determinism and resume: the data and random state of a step are functions of (seed, step), not of
state carried from step to step. Optimizer step s uses ``grad_accum`` micro-batches numbered j, each
drawn with ``numpy.random.default_rng([seed, 0, s, j])``; under DDP process r takes the micro-batches
j = r, r + N, ..., so N processes compute the same optimizer step as one (up to float summation order).
The torch generator (dropout) is reseeded every step from (seed, s, rank). A checkpoint therefore needs
only the step, the weights and the optimizer state, and a resumed run repeats the uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..model import GPT, GPTConfig, load_state
from ..transcript import VOCAB
from .checkpoint import CHECKPOINT, LOG, load_checkpoint, save_checkpoint, truncate_log, write_run_config
from .config import TrainConfig, TrainingError
from .evaluate import Objective, Reducer, legal_move_rate, legal_prompts, mfu, validation_metrics
from .windows import Split, load_split_games, sample_batch


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr`` at ``lr_decay_iters``, then flat (nanoGPT's)."""
    if step < cfg.warmup_iters:
        return cfg.learning_rate * (step + 1) / (cfg.warmup_iters + 1)
    if step >= cfg.lr_decay_iters:
        return cfg.min_lr
    ratio = (step - cfg.warmup_iters) / max(1, cfg.lr_decay_iters - cfg.warmup_iters)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.learning_rate - cfg.min_lr)


def make_optimizer(model: GPT, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (dim >= 2) only, fused on CUDA."""
    params = list(model.parameters())
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2), **extra)


@dataclass(frozen=True)
class Distributed:
    """This process's place in a ``torchrun`` job (rank 0 of 1 without one)."""

    rank: int = 0
    local_rank: int = 0
    world: int = 1

    @classmethod
    def from_env(cls) -> "Distributed":
        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            return cls()
        try:
            return cls(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ["WORLD_SIZE"]))
        except ValueError:
            raise TrainingError("RANK, LOCAL_RANK and WORLD_SIZE must be integers (set by torchrun)") from None

    @property
    def main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str, local_rank: int) -> torch.device:
    if not re.fullmatch(r"cpu|cuda(:\d+)?", name):
        raise TrainingError(f"unknown device {name!r}; use cpu, cuda or cuda:N")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise TrainingError("CUDA is not available here (no GPU, or a CPU-only torch); use --device cpu")
        if name == "cuda":
            name = f"cuda:{local_rank}"
        if torch.device(name).index >= torch.cuda.device_count():
            raise TrainingError(f"no such GPU: {name} ({torch.cuda.device_count()} visible)")
    return torch.device(name)


def cpu_has_bf16() -> bool:
    """True when the CPU computes in bfloat16 natively (AVX512-BF16 or AMX), read from /proc/cpuinfo.

    Without those instructions bfloat16 autocast is emulated and slower than float32, so ``auto``
    picks float32 there (and on systems with no /proc/cpuinfo).
    """
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(cfg: TrainConfig, device: torch.device) -> str:
    """The compute dtype of a run: ``auto`` is bfloat16 autocast where the device supports it natively."""
    if cfg.dtype != "auto":
        return cfg.dtype
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if cpu_has_bf16() else "float32"


def autocast_context(cfg: TrainConfig, device: torch.device) -> contextlib.AbstractContextManager:
    if resolve_dtype(cfg, device) == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def check_dataset(data_dir: Path, model_cfg: GPTConfig) -> None:
    meta_path = data_dir / "meta.json"
    if not data_dir.is_dir():
        raise TrainingError(f"{data_dir}: no such dataset directory")
    if not meta_path.is_file():
        raise TrainingError(f"{data_dir}: not a prepared dataset (missing meta.json); run `transcend data prepare`")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TrainingError(f"{meta_path}: unreadable ({exc})") from None
    vocab = meta.get("vocab") if isinstance(meta, dict) else None
    if vocab != VOCAB:
        raise TrainingError(f"{data_dir}: the dataset's vocabulary {vocab!r} differs from the model's {VOCAB!r}")
    if model_cfg.vocab_size != len(VOCAB):
        raise TrainingError(
            f"the model config has vocab_size {model_cfg.vocab_size}, but the dataset has {len(VOCAB)} symbols"
        )


def _step_seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1, dtype=np.uint64)[0] >> 1)


class _StopRequest:
    """SIGINT / SIGTERM ask the loop to stop at the end of the current step, after a checkpoint."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def train(
    data_dir: Path,
    out_dir: Path,
    model_config: GPTConfig,
    cfg: TrainConfig,
    device: str = "cpu",
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (or resume) a model in ``out_dir``; returns the last logged record.

    Under ``torchrun`` (RANK / WORLD_SIZE set) this runs DDP: NCCL on CUDA, gloo on the CPU; process 0
    writes the run directory. SIGINT / SIGTERM stop after the current step with a checkpoint, then
    raise KeyboardInterrupt.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    dist = Distributed.from_env()
    torch_device = resolve_device(device, dist.local_rank)
    check_dataset(data_dir, model_config)
    with_values = model_config.value_head
    train_split = load_split_games(data_dir, "train", need_results=with_values)
    val_split = load_split_games(data_dir, "val", need_results=with_values)
    if train_split.n_games == 0:
        raise TrainingError(f"{data_dir}: the training split has no games")
    if val_split.n_games == 0:
        val_split = train_split  # a tiny dataset may have no validation game; measure on training games
    if cfg.grad_accum % dist.world:
        raise TrainingError(
            f"grad_accum ({cfg.grad_accum}) must be a multiple of the number of processes ({dist.world})"
        )
    state = None
    if resume:
        state = load_checkpoint(out_dir, model_config, torch_device)
    elif (out_dir / CHECKPOINT).exists():
        raise TrainingError(f"{out_dir} already holds a training run; continue it with --resume or choose another --out")

    if dist.world > 1:
        torch.distributed.init_process_group(
            backend="nccl" if torch_device.type == "cuda" else "gloo", rank=dist.rank, world_size=dist.world
        )
    try:
        return _run(data_dir, out_dir, model_config, cfg, torch_device, dist, train_split, val_split, state, progress)
    finally:
        if dist.world > 1:
            torch.distributed.destroy_process_group()


def _run(data_dir: Path, out_dir: Path, model_cfg: GPTConfig, cfg: TrainConfig, device: torch.device,
         dist: Distributed, train_split: Split, val_split: Split, state: dict[str, Any] | None,
         progress: bool) -> dict[str, Any]:
    from tqdm import tqdm

    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(cfg.seed)
    model = GPT(model_cfg).to(device)
    optimizer = make_optimizer(model, cfg, device)
    step = 0
    if state is not None:
        load_state(model, state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = int(state["step"])
        del state
    objective: torch.nn.Module = Objective(model, cfg.value_loss_weight)
    if cfg.compile:
        objective = torch.compile(objective)
    if dist.world > 1:
        objective = torch.nn.parallel.DistributedDataParallel(
            objective, device_ids=[device.index] if device.type == "cuda" else None
        )

    autocast = autocast_context(cfg, device)
    reducer = Reducer(dist.rank, dist.world)
    with_values = model_cfg.value_head
    block = model_cfg.block_size
    micro_steps = cfg.grad_accum // dist.world
    tokens_per_step = cfg.batch_size * cfg.grad_accum * block
    n_params = model.num_params(non_embedding=True)
    prompts = legal_prompts(val_split, cfg.legal_prompts, block, cfg.seed) if cfg.legal_prompts else []

    if dist.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_run_config(out_dir, model_cfg, cfg, data_dir)
        records = truncate_log(out_dir, step)
    else:
        records = []
    record: dict[str, Any] = records[-1] if records else {"step": step}

    def to_device(a: np.ndarray | None) -> torch.Tensor | None:
        if a is None:
            return None
        t = torch.from_numpy(a)
        if device.type == "cuda":
            return t.pin_memory().to(device, non_blocking=True)
        return t

    def evaluate() -> dict[str, float]:
        out = validation_metrics(model, val_split, cfg.batch_size, cfg.eval_iters, cfg.seed, device, autocast, reducer)
        if prompts:
            out["legal_move_rate"] = legal_move_rate(model, prompts, cfg.legal_temperature, cfg.seed, device,
                                                     autocast, reducer)
        return {k: round(v, 5) for k, v in out.items()}

    log = open(out_dir / LOG, "a") if dist.main else None
    bar = tqdm(total=cfg.max_iters, initial=step, disable=None if (progress and dist.main) else True,
               desc="train", unit="step", dynamic_ncols=True)
    try:
        with _StopRequest() as stop:
            model.train()
            last_log_time, last_log_step, excluded = time.perf_counter(), step, 0.0
            while step < cfg.max_iters:
                lr = learning_rate(step, cfg)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                torch.manual_seed(_step_seed(cfg.seed, step, dist.rank))
                lm_sum = torch.zeros((), device=device)
                value_sum = torch.zeros((), device=device)
                for m in range(micro_steps):
                    rng = np.random.default_rng([cfg.seed, 0, step, m * dist.world + dist.rank])
                    batch = sample_batch(train_split, cfg.batch_size, block, rng, with_values)
                    if dist.world > 1:
                        objective.require_backward_grad_sync = m == micro_steps - 1
                    with autocast:
                        total, lm_loss, value_loss = objective(to_device(batch.x), to_device(batch.y),
                                                               to_device(batch.value))
                    (total / micro_steps).backward()
                    lm_sum += lm_loss.detach() / micro_steps
                    if value_loss is not None:
                        value_sum += value_loss.detach() / micro_steps
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                bar.update(1)

                last = step == cfg.max_iters
                if dist.world > 1:  # every process must agree to stop at the same step
                    flag = torch.tensor([float(stop.requested)], device=device)
                    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
                    stop.requested = bool(flag.item())
                evaluating = step % cfg.eval_interval == 0 or last
                if step % cfg.log_interval == 0 or evaluating or stop.requested:
                    losses = reducer.sum([lm_sum.item(), value_sum.item()], device)
                    elapsed = time.perf_counter() - last_log_time - excluded
                    tokens_per_s = tokens_per_step * (step - last_log_step) / max(elapsed, 1e-9)
                    record = {"step": step, "loss": round(losses[0] / dist.world, 5), "lr": lr,
                              "tokens_per_s": round(tokens_per_s, 1),
                              "mfu": float(f"{mfu(model_cfg, n_params, tokens_per_s / dist.world, cfg.peak_flops):.4g}")}
                    if with_values:
                        record["train_value_loss"] = round(losses[1] / dist.world, 5)
                    if evaluating:
                        record.update(evaluate())
                    if log is not None:
                        log.write(json.dumps(record) + "\n")
                        log.flush()
                    bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{tokens_per_s:.0f}",
                                    **({"val": f"{record['val_loss']:.3f}"} if "val_loss" in record else {}))
                    last_log_time, last_log_step, excluded = time.perf_counter(), step, 0.0
                if dist.main and (step % cfg.checkpoint_interval == 0 or last or stop.requested):
                    t0 = time.perf_counter()
                    save_checkpoint(out_dir, model, optimizer, step, model_cfg, cfg)
                    excluded += time.perf_counter() - t0
                if stop.requested:
                    raise KeyboardInterrupt
    finally:
        bar.close()
        if log is not None:
            log.close()
    return record
