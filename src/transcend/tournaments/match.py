"""One game between two players: time control, move cap, adjudication, and engine faults.

Rules (written in the README, section "Tournaments and ratings"):
- The game ends by the rules of chess: checkmate, stalemate (a draw, unlike the paper's code),
  insufficient material, and the draws a player may claim (threefold repetition, fifty moves), which
  are claimed at once, as cutechess-cli does.
- Move cap: with ``max_moves = N`` a game still going after full move N is a draw (the paper's 90).
- A player that crashes, sends an illegal move (or none), or runs out of time loses the game; the
  fault is recorded with the side and the kind (``crash``, ``illegal_move``, ``time_loss``).
- Adjudication uses the evaluations the engines report with their moves, turned to White's point of
  view. Resign: the last COUNT evaluations all at least SCORE centipawns for the same side. Draw: after
  full move NUMBER, the last COUNT evaluations all within SCORE centipawns of zero, counting only since
  the last capture or pawn move. An engine that reports no evaluation (our model) is judged by its
  opponent's evaluations alone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import time
from dataclasses import dataclass, field
from typing import Protocol

import chess
import chess.engine

from ..uci.protocol import RANDOM_MOVE_NOTE
from ..errors import TranscendError
from ..experts import Expert, ExpertCrashed, ExpertError

HANG_TIMEOUT_S = 60.0
"""An engine with no time limit on its move (a node or depth limit) loses on time after this long."""
MATE_SCORE_CP = 100_000

CRASH, ILLEGAL_MOVE, TIME_LOSS = "crash", "illegal_move", "time_loss"
FAULT_KINDS = (ILLEGAL_MOVE, CRASH, TIME_LOSS)


class MatchError(TranscendError):
    """A bad game setting (time control, adjudication rule)."""


# -- limits and rules ---------------------------------------------------------------------------

_TC = re.compile(r"^(?:(\d+)/)?(?:(\d+):)?(\d+(?:\.\d+)?)(?:\+(\d+(?:\.\d+)?))?$")


@dataclass(frozen=True)
class TimeControl:
    """A chess clock in cutechess-cli's notation: ``[MOVES/]TIME[+INC]``, TIME in seconds or M:SS."""

    base_s: float
    increment_s: float = 0.0
    moves: int = 0  # moves per period; 0 means the whole game

    @classmethod
    def parse(cls, text: str) -> TimeControl:
        match = _TC.match(text.strip())
        if not match:
            raise MatchError(f"--tc {text!r}: use [MOVES/]SECONDS[+INCREMENT], e.g. 10+0.1, 40/60, 1:30+1")
        moves, minutes, seconds, inc = match.groups()
        base = float(seconds) + 60.0 * int(minutes or 0)
        if base <= 0:
            raise MatchError(f"--tc {text!r}: the time must be positive")
        return cls(base, float(inc or 0.0), int(moves or 0))

    def __str__(self) -> str:
        text = f"{self.base_s:g}"
        if self.moves:
            text = f"{self.moves}/{text}"
        if self.increment_s:
            text += f"+{self.increment_s:g}"
        return text


@dataclass(frozen=True)
class MoveLimit:
    """How long a player may think: a fixed time a move, a node count, or a chess clock (one of them)."""

    movetime_ms: int | None = None
    nodes: int | None = None
    clock: TimeControl | None = None

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.movetime_ms, self.nodes, self.clock)) != 1:
            raise MatchError("give exactly one of --movetime, --nodes and --tc")

    def describe(self) -> str:
        if self.clock is not None:
            return f"tc {self.clock}"
        if self.nodes is not None:
            return f"nodes {self.nodes}"
        return f"movetime {self.movetime_ms} ms"


def _parse_rule(text: str, option: str, keys: tuple[str, ...], required: tuple[str, ...]) -> dict[str, int]:
    values: dict[str, int] = {}
    for item in filter(None, re.split(r"[,\s]+", text.strip())):
        key, eq, value = item.partition("=")
        if not eq or key not in keys:
            raise MatchError(f"{option} {text!r}: {item!r} is not one of {', '.join(k + '=N' for k in keys)}")
        try:
            values[key] = int(value)
        except ValueError:
            raise MatchError(f"{option} {text!r}: {key} must be a whole number") from None
        if values[key] < 0:
            raise MatchError(f"{option} {text!r}: {key} must not be negative")
    missing = [k for k in required if k not in values]
    if missing:
        raise MatchError(f"{option} {text!r}: missing {', '.join(missing)}")
    return values


@dataclass(frozen=True)
class DrawRule:
    movenumber: int
    movecount: int
    score: int

    @classmethod
    def parse(cls, text: str) -> DrawRule:
        v = _parse_rule(text, "--adjudicate-draw", ("movenumber", "movecount", "score"), ("movecount", "score"))
        if v["movecount"] < 1:
            raise MatchError("--adjudicate-draw: movecount must be at least 1")
        return cls(v.get("movenumber", 0), v["movecount"], v["score"])

    def __str__(self) -> str:
        return f"movenumber={self.movenumber} movecount={self.movecount} score={self.score}"


@dataclass(frozen=True)
class ResignRule:
    movecount: int
    score: int

    @classmethod
    def parse(cls, text: str) -> ResignRule:
        v = _parse_rule(text, "--adjudicate-resign", ("movecount", "score"), ("movecount", "score"))
        if v["movecount"] < 1:
            raise MatchError("--adjudicate-resign: movecount must be at least 1")
        return cls(v["movecount"], v["score"])

    def __str__(self) -> str:
        return f"movecount={self.movecount} score={self.score}"


@dataclass(frozen=True)
class GameRules:
    limit: MoveLimit
    max_moves: int | None = None
    draw: DrawRule | None = None
    resign: ResignRule | None = None
    time_margin_ms: int = 1000


# -- players ------------------------------------------------------------------------------------


class PlayerFault(Exception):
    """The player lost the game by its own fault."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass
class Reply:
    move: chess.Move
    score_cp: int | None  # from the mover's point of view, when the player reported one
    random: bool = False  # our engine's emergency move: no time for the model, a random legal move


class Player(Protocol):
    name: str

    def play(self, board: chess.Board, limit: chess.engine.Limit, timeout_s: float | None, game: object) -> Reply:
        """The player's move; raises PlayerFault for a crash, an illegal move or a hung engine."""
        ...

    def close(self) -> None: ...


def _fault_from(exc: BaseException, name: str) -> PlayerFault:
    if isinstance(exc, (chess.engine.EngineTerminatedError, ExpertCrashed)):
        return PlayerFault(CRASH, f"{name} crashed ({exc})")
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, concurrent.futures.TimeoutError)):
        return PlayerFault(TIME_LOSS, f"{name} did not answer in time")
    if isinstance(exc, (chess.engine.EngineError, ExpertError)):
        return PlayerFault(ILLEGAL_MOVE, f"{name}: {exc}")
    raise exc


@dataclass
class EnginePlayer:
    """A UCI engine process. ``fixed_limit``, when set, replaces the game's limit: an expert spec's own
    limit, or no limit at all (``Limit()``, a bare ``go``) for our model outside clock games."""

    engine: chess.engine.SimpleEngine
    name: str
    fixed_limit: chess.engine.Limit | None = None
    reports_scores: bool = True
    """False for an engine whose scores mean nothing (our model without a value head says ``cp 0``)."""

    def play(self, board: chess.Board, limit: chess.engine.Limit, timeout_s: float | None, game: object) -> Reply:
        limit = self.fixed_limit if self.fixed_limit is not None else limit
        try:
            coro = asyncio.wait_for(
                self.engine.protocol.play(board, limit, game=game, info=chess.engine.INFO_SCORE), timeout_s
            )
            result = asyncio.run_coroutine_threadsafe(coro, self.engine.protocol.loop).result()
        except Exception as exc:  # noqa: BLE001 - sorted into faults; anything else is re-raised
            raise _fault_from(exc, self.name) from None
        if result.move is None:
            raise PlayerFault(ILLEGAL_MOVE, f"{self.name} sent no move in a position with legal moves")
        score = result.info.get("score") if self.reports_scores else None
        score_cp = None if score is None else score.pov(board.turn).score(mate_score=MATE_SCORE_CP)
        return Reply(result.move, score_cp, random=result.info.get("string", "").endswith(RANDOM_MOVE_NOTE))

    def close(self) -> None:
        try:
            self.engine.quit()
        except Exception:  # noqa: BLE001 - a dead or hung engine is simply killed
            self.engine.close()


@dataclass
class ExpertPlayer:
    """An expert from ``transcend.experts`` (random, noisy): it keeps its own limit and reports no score."""

    expert: Expert
    name: str

    def play(self, board: chess.Board, limit: chess.engine.Limit, timeout_s: float | None, game: object) -> Reply:
        try:
            move = self.expert.choose(board)
        except Exception as exc:  # noqa: BLE001 - sorted into faults; anything else is re-raised
            raise _fault_from(exc, self.name) from None
        return Reply(move, None)

    def close(self) -> None:
        self.expert.close()


# -- one game -----------------------------------------------------------------------------------


@dataclass
class GameRecord:
    """What a finished game leaves behind; the journal stores it as JSON."""

    result: str  # "1-0", "0-1", "1/2-1/2"
    termination: str  # PGN Termination: normal, adjudication, time forfeit, rules infraction, abandoned
    reason: str  # in words: "checkmate", "stalemate", "move cap after full move 90", ...
    moves: list[str]  # UCI moves played after the start position
    scores: list[int | None]  # each move's reported evaluation, White's point of view
    times_ms: list[int]
    fault: dict | None = None  # {"side": "white"|"black", "kind": ..., "detail": ...}
    random_plies: list[int] = field(default_factory=list)  # indices into ``moves`` of emergency random moves


def _outcome_reason(outcome: chess.Outcome) -> str:
    return outcome.termination.name.lower().replace("_", " ")


class _Adjudicator:
    def __init__(self, rules: GameRules) -> None:
        self.rules = rules
        self.resign_window: list[int] = []
        self.draw_window: list[int] = []

    def observe(self, board: chess.Board, move: chess.Move, white_cp: int | None) -> tuple[str, str] | None:
        """Called before ``move`` is pushed; returns (result, reason) when the game is adjudicated."""
        if board.is_capture(move) or board.piece_type_at(move.from_square) == chess.PAWN:
            self.draw_window.clear()
        if white_cp is None:
            return None
        resign, draw = self.rules.resign, self.rules.draw
        if resign is not None:
            self.resign_window = (self.resign_window + [white_cp])[-resign.movecount:]
            if len(self.resign_window) == resign.movecount:
                if all(s <= -resign.score for s in self.resign_window):
                    return "0-1", f"resign adjudication ({resign})"
                if all(s >= resign.score for s in self.resign_window):
                    return "1-0", f"resign adjudication ({resign})"
        if draw is not None:
            self.draw_window = (self.draw_window + [white_cp])[-draw.movecount:]
            if (
                board.fullmove_number >= draw.movenumber
                and len(self.draw_window) == draw.movecount
                and all(abs(s) <= draw.score for s in self.draw_window)
            ):
                return "1/2-1/2", f"draw adjudication ({draw})"
        return None


class _Clocks:
    def __init__(self, tc: TimeControl) -> None:
        self.tc = tc
        self.left = {chess.WHITE: tc.base_s, chess.BLACK: tc.base_s}
        self.moves_made = {chess.WHITE: 0, chess.BLACK: 0}

    def limit(self, turn: chess.Color) -> chess.engine.Limit:
        to_go = None
        if self.tc.moves:
            to_go = self.tc.moves - self.moves_made[turn] % self.tc.moves
        return chess.engine.Limit(
            white_clock=max(self.left[chess.WHITE], 0.001), black_clock=max(self.left[chess.BLACK], 0.001),
            white_inc=self.tc.increment_s, black_inc=self.tc.increment_s, remaining_moves=to_go,
        )

    def charge(self, turn: chess.Color, elapsed_s: float) -> None:
        self.left[turn] -= elapsed_s
        self.left[turn] += self.tc.increment_s
        self.moves_made[turn] += 1
        if self.tc.moves and self.moves_made[turn] % self.tc.moves == 0:
            self.left[turn] += self.tc.base_s


def play_game(
    white: Player,
    black: Player,
    start: chess.Board,
    rules: GameRules,
    game_key: object,
    should_stop=lambda: False,
) -> GameRecord | None:
    """Play one game from ``start`` (its move stack is the opening). None when stopped early."""
    board = start.copy()
    players = {chess.WHITE: white, chess.BLACK: black}
    margin_s = rules.time_margin_ms / 1000.0
    clocks = _Clocks(rules.limit.clock) if rules.limit.clock is not None else None
    per_move = chess.engine.Limit(
        time=rules.limit.movetime_ms / 1000.0 if rules.limit.movetime_ms is not None else None,
        nodes=rules.limit.nodes,
    )
    adjudicator = _Adjudicator(rules)
    moves: list[str] = []
    scores: list[int | None] = []
    times_ms: list[int] = []
    random_plies: list[int] = []

    def finish(result: str, termination: str, reason: str, fault: dict | None = None) -> GameRecord:
        return GameRecord(result, termination, reason, moves, scores, times_ms, fault, random_plies)

    while True:
        outcome = board.outcome(claim_draw=True)
        if outcome is not None:
            return finish(outcome.result(), "normal", _outcome_reason(outcome))
        if rules.max_moves is not None and board.turn == chess.WHITE and board.fullmove_number > rules.max_moves:
            return finish("1/2-1/2", "adjudication", f"move cap after full move {rules.max_moves}")
        if should_stop():
            return None
        turn = board.turn
        player = players[turn]
        if clocks is not None:
            limit = clocks.limit(turn)
            deadline = clocks.left[turn] + margin_s
        else:
            limit = per_move
            own = getattr(player, "fixed_limit", None)
            own = own if own is not None else limit
            deadline = own.time + margin_s if own.time is not None else HANG_TIMEOUT_S
        side = "white" if turn == chess.WHITE else "black"
        loser_wins = "0-1" if turn == chess.WHITE else "1-0"

        def fault(kind: str, detail: str) -> GameRecord:
            termination = {CRASH: "abandoned", ILLEGAL_MOVE: "rules infraction", TIME_LOSS: "time forfeit"}[kind]
            return finish(loser_wins, termination, f"{side} {kind.replace('_', ' ')}",
                          {"side": side, "kind": kind, "detail": detail})

        started = time.monotonic()
        try:
            reply = player.play(board, limit, deadline, game_key)
        except PlayerFault as exc:
            if should_stop():
                return None  # an engine that died because we are shutting down is not a result
            return fault(exc.kind, exc.detail)
        elapsed = time.monotonic() - started
        if elapsed > deadline:
            return fault(TIME_LOSS, f"{player.name} took {elapsed:.3f} s, {deadline:.3f} s allowed")
        if not board.is_legal(reply.move):
            return fault(ILLEGAL_MOVE, f"{player.name} played the illegal move {reply.move.uci()}")
        if clocks is not None:
            clocks.charge(turn, elapsed)
        white_cp = None if reply.score_cp is None else (reply.score_cp if turn == chess.WHITE else -reply.score_cp)
        verdict = adjudicator.observe(board, reply.move, white_cp)
        board.push(reply.move)
        if reply.random:
            random_plies.append(len(moves))
        moves.append(reply.move.uci())
        scores.append(white_cp)
        times_ms.append(round(elapsed * 1000))
        if verdict is not None:
            return finish(verdict[0], "adjudication", verdict[1])
