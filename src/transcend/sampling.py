"""The paper's move sampler: symbol by symbol at temperature T until a space (``token`` sampling, docs/formats.md).

The paper's evaluation prompts the model with the transcript so far (``;1.e4 e5 2.``), samples up to
10 symbols one at a time at temperature T, and takes the text up to the first space as the move;
an illegal move is retried, up to 5 attempts. This module is that sampler, written once: the caller
gives a function that returns next-symbol logits, so the engine plugs in its ONNX / KV-cache model and
training plugs in a torch one (for the periodic legal-move rate).

* ``sample_move_text(next_logits, prompt, T, rng)``: one attempt; the sampled text before the first space.
* ``sample_move_texts(batch_logits, prompts, T, rngs)``: the same for several prompts at once.
* ``sample_legal_move(next_logits, board, prompt, T, rng)``: attempts until one parses as a legal move
  on ``board`` (at most ``max_attempts``), counting the illegal ones.

Legality is python-chess's ``Board.parse_san``, as in the paper's code: it accepts a move that is legal
but written loosely (a missing or extra ``+``, an over-specified origin square); null moves (``--``,
``0000``) and empty text are illegal. ``SampledMove.san`` gives the move's canonical SAN, which is what
belongs in the next prompt.

This module is imported by the engine, so it must not import torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import chess
import numpy as np

from .transcript import SPACE_ID, VOCAB, encode

MAX_MOVE_SYMBOLS = 10
"""The paper samples at most this many symbols for one move."""
MAX_ATTEMPTS = 5
"""The paper's number of attempts before an illegal move loses the game."""

NextSymbolLogits = Callable[[np.ndarray], np.ndarray]
"""``f(ids) -> logits``: ids is a 1-D int64 array (the prompt plus the symbols sampled so far, whole,
not cropped: crop to the model's context inside ``f`` if needed); returns the logits of the symbol
that follows, shape ``(vocab,)``. Called once per sampled symbol, with the same prefix growing by one
symbol each time, so a KV cache inside ``f`` can reuse the previous call's work."""

BatchNextSymbolLogits = Callable[[list[np.ndarray]], np.ndarray]
"""``f([ids, ...]) -> logits``: the batched form, one 1-D int64 array per sequence (lengths may
differ); returns ``(batch, vocab)``, the next-symbol logits of each sequence at its own last symbol."""


def temperature_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(logits / T)`` in float64; ``T <= 0`` puts everything on the largest logit.

    The one place temperature acts: on symbols (the paper's sampler) and on legal moves (``move``
    mode, where the logits are the moves' log-probabilities).
    """
    logits = np.asarray(logits, dtype=np.float64).reshape(-1)
    if temperature <= 0:
        p = np.zeros(len(logits))
        p[int(np.argmax(logits))] = 1.0
        return p
    z = logits / temperature
    p = np.exp(z - z.max())
    return p / p.sum()


def sample_symbol(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """One symbol id from ``softmax(logits / T)``; ``T <= 0`` takes the most likely symbol."""
    if temperature <= 0:
        return int(np.argmax(logits))
    cdf = np.cumsum(temperature_softmax(logits, temperature))
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(cdf) - 1))


def sample_move_texts(
    batch_logits: BatchNextSymbolLogits,
    prompts: Sequence[str],
    temperature: float,
    rngs: Sequence[np.random.Generator],
    max_symbols: int = MAX_MOVE_SYMBOLS,
) -> list[str]:
    """Sample one move text per prompt: up to ``max_symbols`` symbols, stopping at a space.

    Each prompt draws from its own generator in ``rngs``, so a prompt's result does not depend on
    which other prompts share the batch. Returns the text before the first space of each (all of it
    when no space came within ``max_symbols``); empty when the first symbol was a space.
    """
    if len(rngs) != len(prompts):
        raise ValueError(f"need one random generator per prompt ({len(prompts)}), got {len(rngs)}")
    seqs = [encode(p).astype(np.int64) for p in prompts]
    out: list[list[int]] = [[] for _ in prompts]
    active = list(range(len(prompts)))
    for _ in range(max_symbols):
        if not active:
            break
        logits = np.asarray(batch_logits([seqs[i] for i in active]))
        if logits.shape != (len(active), len(VOCAB)):
            raise ValueError(f"next-symbol logits have shape {logits.shape}, expected {(len(active), len(VOCAB))}")
        still = []
        for row, i in enumerate(active):
            symbol = sample_symbol(logits[row], temperature, rngs[i])
            if symbol == SPACE_ID:
                continue
            out[i].append(symbol)
            seqs[i] = np.append(seqs[i], symbol)
            still.append(i)
        active = still
    return ["".join(VOCAB[s] for s in symbols) for symbols in out]


def sample_move_text(
    next_logits: NextSymbolLogits,
    prompt: str,
    temperature: float,
    rng: np.random.Generator,
    max_symbols: int = MAX_MOVE_SYMBOLS,
) -> str:
    """One attempt of the paper's sampler: the text before the first space (see ``sample_move_texts``)."""
    return sample_move_texts(
        lambda seqs: np.asarray(next_logits(seqs[0]))[None], [prompt], temperature, [rng], max_symbols
    )[0]


def parse_move(board: chess.Board, text: str) -> chess.Move | None:
    """The legal move that ``text`` denotes on ``board`` (python-chess SAN parsing), else None."""
    if not text:
        return None
    try:
        move = board.parse_san(text)
    except ValueError:
        return None
    return move if move else None  # a null move is falsy


@dataclass(frozen=True)
class SampledMove:
    move: chess.Move | None
    """The legal move found, or None when every attempt was illegal."""
    san: str | None
    """Its canonical SAN (python-chess), for the next prompt; None with ``move``."""
    attempts: tuple[str, ...]
    """Every sampled text, in order; when ``move`` is set the last one denotes it."""

    @property
    def illegal_attempts(self) -> int:
        return len(self.attempts) - (self.move is not None)


def sample_legal_move(
    next_logits: NextSymbolLogits,
    board: chess.Board,
    prompt: str,
    temperature: float,
    rng: np.random.Generator,
    max_attempts: int = MAX_ATTEMPTS,
    max_symbols: int = MAX_MOVE_SYMBOLS,
) -> SampledMove:
    """Sample move texts from ``prompt`` until one is legal on ``board``, at most ``max_attempts`` times.

    ``prompt`` is the transcript up to the next move (``transcript.next_move_prefix``); ``board`` the
    position it leads to. The caller decides what an exhausted budget means (the paper: the game is
    lost; our engine: fall back to ``move`` mode).
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    attempts = []
    for _ in range(max_attempts):
        text = sample_move_text(next_logits, prompt, temperature, rng, max_symbols)
        attempts.append(text)
        move = parse_move(board, text)
        if move is not None:
            return SampledMove(move, board.san(move), tuple(attempts))
    return SampledMove(None, None, tuple(attempts))
