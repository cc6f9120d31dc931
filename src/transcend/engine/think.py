"""What the engine plays in a position, and the score it shows for it.

The move choice itself belongs to the engine core (``MovePolicy``, ``choose_move``); this module applies
the UCI options around it: the temperature schedule, TopK, ``searchmoves``, token mode, the reply to
ponder on, and the score derived from the model's value head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import chess
import numpy as np

from .policy import MovePolicy, MoveScores, choose_move
from .uci_options import Settings

LICHESS_CP_SCALE = 0.00368208
"""lichess's win-probability curve: expected score = 1 / (1 + exp(-0.00368208 * cp)) for the side to move."""
EXPECTED_SCORE_CLIP = 0.001
"""Expected scores are clipped to [0.001, 0.999] before the mapping, so |cp| <= 1876."""


def temperature_at(ply: int, settings: Settings) -> float:
    """The temperature at ``ply`` (0 = White's first move; a FEN's move counters give its ply).

    Without decay it is ``Temperature``; with ``TemperatureDecay = N`` it moves linearly from
    ``Temperature`` at ply 0 to ``TemperatureFloor`` at ply N and stays there (like lc0's TempDecayMoves,
    which decays to 0; here the end point is the floor).
    """
    if settings.temperature_decay <= 0:
        return settings.temperature
    progress = min(ply / settings.temperature_decay, 1.0)
    return settings.temperature + (settings.temperature_floor - settings.temperature) * progress


def cp_from_wdl(wdl: np.ndarray) -> int:
    """Centipawns for the side to move from the value head's (win, draw, loss) probabilities.

    The expected score E = W + D/2 is put through the inverse of lichess's win-probability curve,
    ``cp = ln(E / (1 - E)) / 0.00368208`` (E = 0.5 gives 0, E = 0.75 gives +298).
    """
    expected = float(wdl[0] + wdl[1] / 2)
    expected = min(max(expected, EXPECTED_SCORE_CLIP), 1 - EXPECTED_SCORE_CLIP)
    return round(math.log(expected / (1 - expected)) / LICHESS_CP_SCALE)


def wdl_permille(wdl: np.ndarray) -> tuple[int, int, int]:
    """(win, draw, loss) in permille, summing to exactly 1000."""
    win, loss = round(float(wdl[0]) * 1000), round(float(wdl[2]) * 1000)
    win, loss = min(max(win, 0), 1000), min(max(loss, 0), 1000 - max(win, 0))
    return win, 1000 - win - loss, loss


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
    """What the GUI should be told in ``info string`` lines."""

    def probability(self, move: chess.Move) -> float | None:
        if self.scores is None or move not in self.scores.moves:
            return None
        return float(np.exp(self.scores.log_probs[self.scores.moves.index(move)]))


def think(policy: MovePolicy, board: chess.Board, settings: Settings, searchmoves: list[chess.Move] | None,
          rng: np.random.Generator) -> Thought:
    """The move to play on ``board`` (which must have a legal move) under ``settings``.

    ``searchmoves`` limits the choice to those moves. TopK keeps the K most probable candidates in
    ``move`` mode. In ``token`` mode the model writes a move symbol by symbol as in the paper; a move
    outside ``searchmoves`` is then replaced by a ``move``-mode choice among them.
    """
    temperature = temperature_at(board.ply(), settings)
    notes: list[str] = []
    needs_scores = (settings.sampling == "move" or searchmoves is not None or settings.multipv > 1
                    or policy.model.info.has_value_head)
    scores = policy.score_legal_moves(board) if needs_scores else None
    if scores is not None and searchmoves is not None:
        scores = restrict(scores, [i for i, m in enumerate(scores.moves) if m in searchmoves])

    if settings.sampling == "token":
        sampled = policy.token_move(board, temperature, rng)
        notes.append(f"token mode: {sampled.illegal_attempts} illegal attempt(s)"
                     + (", fell back to move mode" if sampled.fell_back else ""))
        if searchmoves is None or sampled.move in searchmoves:
            return Thought(sampled.move, temperature, scores, notes)
        notes.append(f"token mode sampled {sampled.move.uci()}, not among searchmoves: chose in move mode")

    candidates = scores
    if settings.top_k and settings.top_k < len(scores.moves):
        candidates = restrict(scores, np.argsort(-scores.log_probs, kind="stable")[: settings.top_k])
    return Thought(choose_move(candidates, temperature, rng), temperature, scores, notes)


def predict_reply(policy: MovePolicy, board: chess.Board, move: chess.Move) -> chess.Move | None:
    """The opponent's most probable reply after ``move`` (the move to ponder on); None if it has none."""
    after = board.copy()
    after.push(move)
    scores = policy.score_legal_moves(after)
    if not scores.moves:
        return None
    return scores.moves[int(np.argmax(scores.log_probs))]
