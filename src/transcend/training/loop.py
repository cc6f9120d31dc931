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
        run = set_up(model_config, cfg, torch_device, dist, train_split, val_split, state)
        del state
        return train_loop(run, data_dir, out_dir, progress)
    finally:
        if dist.world > 1:
            torch.distributed.destroy_process_group()


@dataclass
class Run:
    """What a run's steps need, set up once by ``set_up``; ``step`` counts the optimizer steps done."""

    model_cfg: GPTConfig
    cfg: TrainConfig
    device: torch.device
    dist: Distributed
    model: GPT
    optimizer: torch.optim.AdamW
    objective: torch.nn.Module
    """The model with its loss (``evaluate.Objective``), compiled and wrapped in DDP when asked."""
    autocast: contextlib.AbstractContextManager
    reducer: Reducer
    train_split: Split
    val_split: Split
    prompts: list[str]
    """Validation prompts for the legal-move rate (none when ``legal_prompts`` is 0)."""
    step: int

    @property
    def tokens_per_step(self) -> int:
        return self.cfg.batch_size * self.cfg.grad_accum * self.model_cfg.block_size

    def to_device(self, a: np.ndarray | None) -> torch.Tensor | None:
        if a is None:
            return None
        t = torch.from_numpy(a)
        if self.device.type == "cuda":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t


def set_up(model_cfg: GPTConfig, cfg: TrainConfig, device: torch.device, dist: Distributed, train_split: Split,
           val_split: Split, state: dict[str, Any] | None) -> Run:
    """The model (from ``state``, a checkpoint, when resuming), its optimizer, objective and the rest."""
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
    objective: torch.nn.Module = Objective(model, cfg.value_loss_weight)
    if cfg.compile:
        objective = torch.compile(objective)
    if dist.world > 1:
        objective = torch.nn.parallel.DistributedDataParallel(
            objective, device_ids=[device.index] if device.type == "cuda" else None
        )
    prompts = legal_prompts(val_split, cfg.legal_prompts, model_cfg.block_size, cfg.seed) if cfg.legal_prompts else []
    return Run(model_cfg, cfg, device, dist, model, optimizer, objective, autocast_context(cfg, device),
               Reducer(dist.rank, dist.world), train_split, val_split, prompts, step)


def train_step(run: Run) -> tuple[float, torch.Tensor, torch.Tensor]:
    """One optimizer step over ``grad_accum`` micro-batches (this process's share of them).

    Returns the learning rate and this process's mean language-model and value losses (tensors on
    the device, so that a step does not wait for them).
    """
    cfg, dist, step = run.cfg, run.dist, run.step
    lr = learning_rate(step, cfg)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    torch.manual_seed(_step_seed(cfg.seed, step, dist.rank))
    micro_steps = cfg.grad_accum // dist.world
    lm_sum = torch.zeros((), device=run.device)
    value_sum = torch.zeros((), device=run.device)
    for m in range(micro_steps):
        rng = np.random.default_rng([cfg.seed, 0, step, m * dist.world + dist.rank])
        batch = sample_batch(run.train_split, cfg.batch_size, run.model_cfg.block_size, rng, run.model_cfg.value_head)
        if dist.world > 1:  # gradients are exchanged once, after the last micro-batch
            run.objective.require_backward_grad_sync = m == micro_steps - 1
        with run.autocast:
            total, lm_loss, value_loss = run.objective(run.to_device(batch.x), run.to_device(batch.y),
                                                       run.to_device(batch.value))
        (total / micro_steps).backward()
        lm_sum += lm_loss.detach() / micro_steps
        if value_loss is not None:
            value_sum += value_loss.detach() / micro_steps
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    run.step += 1
    return lr, lm_sum, value_sum


def evaluate(run: Run) -> dict[str, float]:
    """Validation loss (and value metrics), and the legal-move rate of sampled moves, over all processes."""
    cfg = run.cfg
    out = validation_metrics(run.model, run.val_split, cfg.batch_size, cfg.eval_iters, cfg.seed, run.device,
                             run.autocast, run.reducer)
    if run.prompts:
        out["legal_move_rate"] = legal_move_rate(run.model, run.prompts, cfg.legal_temperature, cfg.seed, run.device,
                                                 run.autocast, run.reducer)
    return {k: round(v, 5) for k, v in out.items()}


def log_record(run: Run, lr: float, losses: list[float], tokens_per_s: float, evaluating: bool) -> dict[str, Any]:
    """One line of ``log.jsonl``: ``losses`` are the losses summed over the processes."""
    world = run.dist.world
    n_params = run.model.num_params(non_embedding=True)
    record = {"step": run.step, "loss": round(losses[0] / world, 5), "lr": lr,
              "tokens_per_s": round(tokens_per_s, 1),
              "mfu": float(f"{mfu(run.model_cfg, n_params, tokens_per_s / world, run.cfg.peak_flops):.4g}")}
    if run.model_cfg.value_head:
        record["train_value_loss"] = round(losses[1] / world, 5)
    if evaluating:
        record.update(evaluate(run))
    return record


class _Speed:
    """Tokens a second since the last log line, not counting the time spent writing checkpoints."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.restart()

    def restart(self) -> None:
        self.since, self.since_step, self.excluded = time.perf_counter(), self.run.step, 0.0

    def exclude(self, seconds: float) -> None:
        self.excluded += seconds

    def tokens_per_s(self) -> float:
        elapsed = time.perf_counter() - self.since - self.excluded
        return self.run.tokens_per_step * (self.run.step - self.since_step) / max(elapsed, 1e-9)


def _agree_to_stop(run: Run, requested: bool) -> bool:
    """Whether any process was asked to stop: under DDP every process must stop at the same step."""
    if run.dist.world == 1:
        return requested
    flag = torch.tensor([float(requested)], device=run.device)
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    return bool(flag.item())


def train_loop(run: Run, data_dir: Path, out_dir: Path, progress: bool) -> dict[str, Any]:
    """Train ``run`` to ``max_iters`` steps, logging, evaluating and checkpointing on the way."""
    from tqdm import tqdm

    cfg, main = run.cfg, run.dist.main
    # The run directory: its config, and a log that ends at the step the run starts from.
    records: list[dict[str, Any]] = []
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_run_config(out_dir, run.model_cfg, cfg, data_dir)
        records = truncate_log(out_dir, run.step)
    record: dict[str, Any] = records[-1] if records else {"step": run.step}
    log = open(out_dir / LOG, "a") if main else None
    bar = tqdm(total=cfg.max_iters, initial=run.step, disable=None if (progress and main) else True,
               desc="train", unit="step", dynamic_ncols=True)
    try:
        with _StopRequest() as stop:
            run.model.train()
            speed = _Speed(run)
            while run.step < cfg.max_iters:
                # One optimizer step.
                lr, lm_loss, value_loss = train_step(run)
                bar.update(1)
                last = run.step == cfg.max_iters
                stop.requested = _agree_to_stop(run, stop.requested)

                # Log every log_interval steps, with an evaluation every eval_interval steps and at the end.
                evaluating = run.step % cfg.eval_interval == 0 or last
                if run.step % cfg.log_interval == 0 or evaluating or stop.requested:
                    losses = run.reducer.sum([lm_loss.item(), value_loss.item()], run.device)
                    tokens_per_s = speed.tokens_per_s()  # after the losses: .item() waits for the device
                    record = log_record(run, lr, losses, tokens_per_s, evaluating)
                    if log is not None:
                        log.write(json.dumps(record) + "\n")
                        log.flush()
                    bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{tokens_per_s:.0f}",
                                    **({"val": f"{record['val_loss']:.3f}"} if "val_loss" in record else {}))
                    speed.restart()

                # Checkpoint every checkpoint_interval steps, at the end, and before stopping.
                if main and (run.step % cfg.checkpoint_interval == 0 or last or stop.requested):
                    t0 = time.perf_counter()
                    save_checkpoint(out_dir, run.model, run.optimizer, run.step, run.model_cfg, cfg)
                    speed.exclude(time.perf_counter() - t0)
                if stop.requested:
                    raise KeyboardInterrupt
    finally:
        bar.close()
        if log is not None:
            log.close()
    return record
