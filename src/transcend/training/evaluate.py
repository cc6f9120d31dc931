"""What training measures besides its loss: validation loss, value-head accuracy, legal-move rate, MFU.

Each evaluation is a sum over numbered items (validation batches, prompts), so under DDP every process
takes every N-th item and the sums are all-reduced: the figures do not depend on the number of processes.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

import chess
import numpy as np
import torch
import torch.nn.functional as F

from ..model import GPT, GPTConfig
from ..sampling import MAX_MOVE_SYMBOLS, parse_move, sample_move_texts
from ..transcript import next_move_prefix, sans_from_transcript
from .windows import Split, sample_batch

VAL_STREAM, LEGAL_STREAM = 1, 2
"""Random streams (besides the training stream 0) derived from the seed: validation windows, prompts."""


def lm_and_value_losses(
    model: GPT, x: torch.Tensor, y: torch.Tensor, value: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Next-symbol loss (mean), and for a value head: summed WDL cross-entropy, correct count, count."""
    logits, wdl = model.forward_with_value(x)
    lm_loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))
    if wdl is None or value is None:
        return lm_loss, None, None, None
    wdl = wdl.float().reshape(-1, 3)
    target = value.reshape(-1)
    known = target >= 0
    nll = F.cross_entropy(wdl, target.clamp(min=0), reduction="none")
    nll_sum = (nll * known).sum()
    correct = ((wdl.argmax(-1) == target) & known).sum()
    return lm_loss, nll_sum, correct, known.sum()


class Objective(torch.nn.Module):
    """The training loss as one module (what DDP and torch.compile wrap): LM loss + w * value loss."""

    def __init__(self, model: GPT, value_loss_weight: float) -> None:
        super().__init__()
        self.model = model
        self.value_loss_weight = value_loss_weight

    def forward(self, x: torch.Tensor, y: torch.Tensor, value: torch.Tensor | None = None):
        lm_loss, nll_sum, _, count = lm_and_value_losses(self.model, x, y, value)
        if nll_sum is None:
            return lm_loss, lm_loss, None
        value_loss = nll_sum / count.clamp(min=1)
        return lm_loss + self.value_loss_weight * value_loss, lm_loss, value_loss


@dataclass(frozen=True)
class Reducer:
    """Sums across processes (identity in a single process)."""

    rank: int = 0
    world: int = 1

    def mine(self, n: int) -> range:
        return range(self.rank, n, self.world)

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=device)
        torch.distributed.all_reduce(t)
        return t.tolist()


@torch.no_grad()
def validation_metrics(model: GPT, split: Split, batch_size: int, iters: int, seed: int,
                       device: torch.device, autocast: AbstractContextManager, reducer: Reducer) -> dict[str, float]:
    """Mean next-symbol loss on ``iters`` fixed validation batches; value log loss and accuracy."""
    was_training = model.training
    model.eval()
    with_values = model.value_head is not None
    sums = [0.0, 0.0, 0.0, 0.0]  # lm loss, value nll, value correct, value count
    for i in reducer.mine(iters):
        batch = sample_batch(split, batch_size, model.config.block_size,
                             np.random.default_rng([seed, VAL_STREAM, i]), with_values)
        x, y = torch.from_numpy(batch.x).to(device), torch.from_numpy(batch.y).to(device)
        value = torch.from_numpy(batch.value).to(device) if with_values else None
        with autocast:
            lm_loss, nll, correct, count = lm_and_value_losses(model, x, y, value)
        sums[0] += lm_loss.item()
        if nll is not None:
            sums[1] += nll.item()
            sums[2] += correct.item()
            sums[3] += count.item()
    model.train(was_training)
    lm, nll, correct, count = reducer.sum(sums, device)
    out = {"val_loss": lm / iters}
    if with_values and count:
        out["value_loss"] = nll / count
        out["value_acc"] = correct / count
    return out


@dataclass(frozen=True)
class LegalPrompt:
    prompt: str
    """Transcript up to the next move (``;1.e4 e5 2.``)."""
    fen: str
    """The position it leads to."""


def legal_prompts(split: Split, n: int, block_size: int, seed: int) -> list[LegalPrompt]:
    """``n`` held-out game prefixes: games drawn from ``split``, each cut before a uniformly drawn move.

    A prefix must leave room for the sampled move within the context; a game whose moves do not
    replay (it cannot happen with prepared data, but the data is input) is skipped.
    """
    rng = np.random.default_rng([seed, LEGAL_STREAM])
    prompts: list[LegalPrompt] = []
    tries = 0
    while len(prompts) < n and split.n_games and tries < 10 * n:
        tries += 1
        sans = sans_from_transcript(split.game_text(int(rng.integers(split.n_games))))
        if not sans:
            continue
        cut = int(rng.integers(len(sans)))
        while cut and len(next_move_prefix(sans[:cut])) + MAX_MOVE_SYMBOLS > block_size:
            cut //= 2
        board = chess.Board()
        try:
            for san in sans[:cut]:
                board.push_san(san)
        except ValueError:
            continue
        prompts.append(LegalPrompt(next_move_prefix(sans[:cut]), board.fen()))
    return prompts


@torch.no_grad()
def legal_move_rate(model: GPT, prompts: list[LegalPrompt], temperature: float, seed: int,
                    device: torch.device, autocast: AbstractContextManager, reducer: Reducer) -> float:
    """Fraction of prompts whose first sampled move (the paper's sampler) is legal."""
    was_training = model.training
    model.eval()
    block = model.config.block_size

    def batch_logits(seqs: list[np.ndarray]) -> np.ndarray:
        seqs = [s[-block:] for s in seqs]
        width = max(len(s) for s in seqs)
        ids = np.zeros((len(seqs), width), dtype=np.int64)  # right padding: causal attention ignores it
        for row, s in enumerate(seqs):
            ids[row, : len(s)] = s
        with autocast:
            logits, _ = model(torch.from_numpy(ids).to(device))
        last = torch.tensor([len(s) - 1 for s in seqs], device=device)
        return logits[torch.arange(len(seqs), device=device), last].float().cpu().numpy()

    mine = list(reducer.mine(len(prompts)))
    legal = 0
    if mine:
        texts = sample_move_texts(batch_logits, [prompts[i].prompt for i in mine], temperature,
                                  [np.random.default_rng([seed, LEGAL_STREAM, i]) for i in mine])
        legal = sum(parse_move(chess.Board(prompts[i].fen), text) is not None for i, text in zip(mine, texts))
    model.train(was_training)
    (total,) = reducer.sum([float(legal)], device)
    return total / len(prompts) if prompts else float("nan")


def flops_per_token(config: GPTConfig, n_params: int) -> float:
    """Training FLOPs per token as nanoGPT counts them (PaLM appendix B): 6N + 12 L H Q T."""
    return 6 * n_params + 12 * config.n_layer * config.n_head * config.head_dim * config.block_size


def mfu(config: GPTConfig, n_params: int, tokens_per_s_per_device: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: achieved training FLOPs per second over the device's peak."""
    return flops_per_token(config, n_params) * tokens_per_s_per_device / peak_flops
