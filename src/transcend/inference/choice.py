"""The move to play in a position: the model's probabilities under a temperature schedule.

``MovePolicy`` gives the probabilities (or, in ``token`` mode, a sampled move); this module applies the
choice around it: the temperature schedule, TopK, a restriction to some moves (UCI's ``searchmoves``),
token mode's fallback, and the reply to ponder on. What to apply is a ``MoveChoice``, so the UCI
engine, and anything else that plays the model, picks moves by the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import chess
import numpy as np

from .policy import MovePolicy, MoveScores, choose_move


@dataclass(frozen=True)
class MoveChoice:
    """How a move is picked from the model's probabilities (the UCI options of the same names)."""

    temperature: float
    temperature_decay: int = 0
    """Plies over which the temperature moves linearly to ``temperature_floor``; 0: no decay."""
    temperature_floor: float = 0.0
    sampling: str = "move"
    """``move``: sample among the legal moves by their exact probability; ``token``: the paper's sampler."""
    top_k: int = 0
    """Sample only among the K most probable moves; 0: all."""


def temperature_at(ply: int, choice: MoveChoice) -> float:
    """The temperature at ``ply`` (0 = White's first move; a FEN's move counters give its ply).

    Without decay it is ``temperature``; with ``temperature_decay = N`` it moves linearly from
    ``temperature`` at ply 0 to ``temperature_floor`` at ply N and stays there (like lc0's TempDecayMoves,
    which decays to 0; here the end point is the floor).
    """
    if choice.temperature_decay <= 0:
        return choice.temperature
    progress = min(ply / choice.temperature_decay, 1.0)
    return choice.temperature + (choice.temperature_floor - choice.temperature) * progress


def restrict(scores: MoveScores, keep: list[int] | np.ndarray) -> MoveScores:
    """The same scores, for the moves at positions ``keep`` only."""
    keep = [int(i) for i in keep]
    return MoveScores([scores.moves[i] for i in keep], [scores.sans[i] for i in keep],
                      scores.log_probs[keep], scores.wdl, scores.prompt)


@dataclass
class Thought:
    """The engine's answer in one position."""

    move: chess.Move
    temperature: float
    scores: MoveScores | None
    """The candidate moves (all legal ones, or the searchmoves) with their probabilities and the value
    head's output; None in token mode when nothing needed them."""
    notes: list[str] = field(default_factory=list)
    """Remarks on how the move was chosen (the UCI engine shows them in ``info string`` lines)."""

    def probability(self, move: chess.Move) -> float | None:
        if self.scores is None or move not in self.scores.moves:
            return None
        return float(np.exp(self.scores.log_probs[self.scores.moves.index(move)]))


def think(policy: MovePolicy, board: chess.Board, choice: MoveChoice, searchmoves: list[chess.Move] | None,
          rng: np.random.Generator, want_scores: bool = False) -> Thought:
    """The move to play on ``board`` (which must have a legal move) under ``choice``.

    ``searchmoves`` limits the choice to those moves. TopK keeps the K most probable candidates in
    ``move`` mode. In ``token`` mode the model writes a move symbol by symbol as in the paper; a move
    outside ``searchmoves`` is then replaced by a ``move``-mode choice among them. ``want_scores``: score
    every candidate even in ``token`` mode (to show several of them).
    """
    temperature = temperature_at(board.ply(), choice)
    notes: list[str] = []
    needs_scores = (choice.sampling == "move" or searchmoves is not None or want_scores
                    or policy.model.info.has_value_head)
    scores = policy.score_legal_moves(board) if needs_scores else None
    if scores is not None and searchmoves is not None:
        scores = restrict(scores, [i for i, m in enumerate(scores.moves) if m in searchmoves])

    if choice.sampling == "token":
        sampled = policy.token_move(board, temperature, rng)
        notes.append(f"token mode: {sampled.illegal_attempts} illegal attempt(s)"
                     + (", fell back to move mode" if sampled.fell_back else ""))
        if searchmoves is None or sampled.move in searchmoves:
            return Thought(sampled.move, temperature, scores, notes)
        notes.append(f"token mode sampled {sampled.move.uci()}, not among searchmoves: chose in move mode")

    candidates = scores
    if choice.top_k and choice.top_k < len(scores.moves):
        candidates = restrict(scores, np.argsort(-scores.log_probs, kind="stable")[: choice.top_k])
    return Thought(choose_move(candidates, temperature, rng), temperature, scores, notes)


def predict_reply(policy: MovePolicy, board: chess.Board, move: chess.Move) -> chess.Move | None:
    """The opponent's most probable reply after ``move`` (the move to ponder on); None if it has none."""
    after = board.copy()
    after.push(move)
    scores = policy.score_legal_moves(after)
    if not scores.moves:
        return None
    return scores.moves[int(np.argmax(scores.log_probs))]
