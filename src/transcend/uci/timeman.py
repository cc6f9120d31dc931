"""Time management: reading ``go`` and deciding how long the answer to it may take.

The engine does not search, so thinking longer buys nothing: a move costs one model evaluation
whatever the clock says. Time management answers one question, how long this move may take at most
(``time_limit``). When the model's recent cost (``CostTracker``) fits within it, the model plays; when it
does not, or the model overruns it, the engine answers at once with a random legal move, an emergency
fallback reported in an ``info string``, so that it never loses on time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import chess

HORIZON = 25
"""Moves assumed left in the game when the GUI gives no ``movestogo`` (sudden death)."""

_NUMBERS = ("wtime", "btime", "winc", "binc", "movestogo", "depth", "nodes", "mate", "movetime")
_SIGNED = ("wtime", "btime", "winc", "binc")  # GUIs send a negative clock after a flag fall
_FLAGS = ("infinite", "ponder")
GO_KEYWORDS = frozenset(_NUMBERS + _FLAGS + ("searchmoves",))


@dataclass(frozen=True)
class GoParams:
    """The arguments of one ``go`` command (times in milliseconds)."""

    wtime: int | None = None
    btime: int | None = None
    winc: int | None = None
    binc: int | None = None
    movestogo: int | None = None
    depth: int | None = None
    nodes: int | None = None
    mate: int | None = None
    movetime: int | None = None
    infinite: bool = False
    ponder: bool = False
    searchmoves: tuple[str, ...] = field(default=())


def parse_go(tokens: list[str]) -> tuple[GoParams, list[str]]:
    """The parameters in ``tokens`` (what follows ``go``), and a note on each token that was ignored."""
    values: dict = {}
    problems: list[str] = []
    i = 0
    while i < len(tokens):
        word = tokens[i].lower()
        i += 1
        if word in _FLAGS:
            values[word] = True
        elif word == "searchmoves":
            moves = []
            while i < len(tokens) and tokens[i].lower() not in GO_KEYWORDS:
                moves.append(tokens[i])
                i += 1
            values["searchmoves"] = tuple(moves)
        elif word in _NUMBERS:
            text = tokens[i] if i < len(tokens) and tokens[i].lower() not in GO_KEYWORDS else None
            if text is None:
                problems.append(f"go {word} needs a number, ignored it")
                continue
            i += 1
            try:
                number = int(text)
            except ValueError:
                problems.append(f"go {word} needs a whole number, not {ascii(text)[:40]}; ignored it")
                continue
            if number < 0 and word not in _SIGNED:
                problems.append(f"go {word} {number}: must not be negative, ignored it")
                continue
            values[word] = number
        else:
            problems.append(f"go: ignored unknown token {ascii(tokens[i - 1])[:40]}")
    return GoParams(**values), problems


def time_limit(go: GoParams, turn: chess.Color, overhead_ms: int) -> float | None:
    """The most seconds the answer may take, or None when nothing limits it.

    ``movetime`` less the overhead; with a clock, an even share of it over the moves to go (``HORIZON``
    in sudden death) plus the increment, never more than half of what is left after the overhead.
    ``infinite`` and ``ponder`` are not limited here: they wait for ``stop`` or ``ponderhit``.
    """
    limits = []
    if go.movetime is not None:
        limits.append(go.movetime - overhead_ms)
    clock = go.wtime if turn == chess.WHITE else go.btime
    if clock is not None:
        increment = max((go.winc if turn == chess.WHITE else go.binc) or 0, 0)
        usable = clock - overhead_ms
        moves = go.movestogo if go.movestogo else HORIZON
        limits.append(min(usable / moves + increment, usable / 2) if moves > 1 else usable * 0.8)
    if not limits:
        return None
    return max(min(limits), 0.0) / 1000.0


class CostTracker:
    """How long a model evaluation takes: the median of the last few.

    When an evaluation is skipped for lack of time there is no new measurement, so ``forget_oldest``
    drops one: after ``keep`` skips in a row the model is tried again (the limit still guards it),
    and a cost measured under a passing load cannot bar the model for the rest of the game.
    """

    def __init__(self, keep: int = 5) -> None:
        self._recent: deque[float] = deque(maxlen=keep)

    def add(self, seconds: float) -> None:
        self._recent.append(seconds)

    def estimate(self) -> float | None:
        if not self._recent:
            return None
        ordered = sorted(self._recent)
        return ordered[len(ordered) // 2]

    def forget_oldest(self) -> None:
        if self._recent:
            self._recent.popleft()
