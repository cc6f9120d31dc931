"""The score a UCI engine shows for its move, from the model's value head."""

from __future__ import annotations

import math

import chess
import numpy as np

LICHESS_CP_SCALE = 0.00368208
"""lichess's win-probability curve: expected score = 1 / (1 + exp(-0.00368208 * cp)) for the side to move."""
EXPECTED_SCORE_CLIP = 0.001
"""Expected scores are clipped to [0.001, 0.999] before the mapping, so |cp| <= 1876."""


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


def score_text(board: chess.Board, move: chess.Move, wdl: np.ndarray | None, show_wdl: bool) -> str:
    """``score mate 1`` for a move that mates at once, else the value head's score (cp 0 without one)."""
    board.push(move)
    mates = board.is_checkmate()
    board.pop()
    if mates:
        return "score mate 1" + (" wdl 1000 0 0" if show_wdl else "")
    if wdl is None:
        return "score cp 0"
    text = f"score cp {cp_from_wdl(wdl)}"
    if show_wdl:
        text += " wdl {} {} {}".format(*wdl_permille(wdl))
    return text
