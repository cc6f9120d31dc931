"""A finished game as the journal keeps it: one line of ``games.jsonl``, with its PGN text."""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass

import chess
import chess.pgn

from .config import GauntletConfig, ScheduledGame, model_player_name
from .match import MATE_SCORE_CP, GameRecord
from .players import model_options, opponent_options


@dataclass(frozen=True)
class GameEntry:
    """One finished game: a line of ``games.jsonl``, its keys in this order."""

    index: int
    """The game's place in the schedule (``config.schedule``)."""
    model: str
    model_path: str
    temperature: float
    opponent: str
    round: int
    model_color: str
    """``white`` or ``black``."""
    result: str
    """``1-0``, ``0-1`` or ``1/2-1/2``."""
    model_score: float
    termination: str
    reason: str
    fault: dict | None
    """The player at fault: ``player`` (model or opponent), ``side``, ``kind`` (``match.FAULT_KINDS``), ``detail``."""
    random_moves: dict[str, int]
    """Emergency random moves (no time for the model) by ``model`` and ``opponent``."""
    seed: int
    start_fen: str
    opening: list[str]
    """The opening's moves (UCI) from ``start_fen``."""
    moves: list[str]
    """The moves played after the opening (UCI)."""
    scores: list[int | None]
    """Each move's reported evaluation, in centipawns for White."""
    times_ms: list[int]
    date: str
    pgn: str

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> GameEntry:
        """A journal line; one written before emergency random moves were counted has none."""
        return cls(**{"random_moves": {"model": 0, "opponent": 0}, **data})


def game_entry(config: GauntletConfig, game: ScheduledGame, start: chess.Board, record: GameRecord,
               seed: int) -> GameEntry:
    """The journal entry of a game played from ``start`` with engine seed ``seed``."""
    model = config.models[game.model]
    opponent = config.opponents[game.opponent]
    score = {"1-0": 1.0, "0-1": 0.0}.get(record.result, 0.5)
    model_score = score if game.model_white else 1.0 - score
    fault = record.fault
    if fault is not None:
        fault = {**fault, "player": "model" if (fault["side"] == "white") == game.model_white else "opponent"}
    model_first = (start.turn == chess.WHITE) == game.model_white
    model_random = sum((ply % 2 == 0) == model_first for ply in record.random_plies)
    date = datetime.date.today().strftime("%Y.%m.%d")
    return GameEntry(
        index=game.index,
        model=model.name,
        model_path=model.path,
        temperature=game.temperature,
        opponent=opponent.name,
        round=game.round,
        model_color="white" if game.model_white else "black",
        result=record.result,
        model_score=model_score,
        termination=record.termination,
        reason=record.reason,
        fault=fault,
        random_moves={"model": model_random, "opponent": len(record.random_plies) - model_random},
        seed=seed,
        start_fen=start.root().fen(),
        opening=[m.uci() for m in start.move_stack],
        moves=record.moves,
        scores=record.scores,
        times_ms=record.times_ms,
        date=date,
        pgn=game_pgn(config, game, start, record, seed, date),
    )


def game_pgn(config: GauntletConfig, game: ScheduledGame, start: chess.Board, record: GameRecord,
             seed: int, date: str) -> str:
    model = config.models[game.model]
    opponent = config.opponents[game.opponent]
    board = start.copy()
    for uci in record.moves:
        board.push_uci(uci)
    pgn = chess.pgn.Game.from_board(board)
    model_name = model_player_name(model, game.temperature)
    white, black = (model_name, opponent.name) if game.model_white else (opponent.name, model_name)
    headers = pgn.headers
    headers["Event"] = "transcend tournament"
    headers["Site"] = "?"
    headers["Date"] = date
    headers["Round"] = str(game.round + 1)
    headers["White"], headers["Black"] = white, black
    headers["Result"] = record.result
    if opponent.elo is not None:
        headers["BlackElo" if game.model_white else "WhiteElo"] = f"{opponent.elo:g}"
    headers["Termination"] = record.termination
    headers["Reason"] = record.reason + (f": {record.fault['detail']}" if record.fault else "")
    headers["Model"] = model.path
    headers["Temperature"] = f"{game.temperature:g}"
    headers["ModelOptions"] = " ".join(f"{k}={v}" for k, v in model_options(config, game.temperature, seed).items())
    headers["Opponent"] = opponent.name
    headers["OpponentOptions"] = opponent_options(opponent)
    headers["Limit"] = config.rules.limit.describe()
    if config.rules.max_moves is not None:
        headers["MoveCap"] = str(config.rules.max_moves)
    headers["GameIndex"] = str(game.index)
    if start.move_stack:
        headers["OpeningPlies"] = str(len(start.move_stack))
    node = pgn
    for _ in start.move_stack:
        node = node.variations[0]
    random_plies = set(record.random_plies)
    for ply, (score, ms) in enumerate(zip(record.scores, record.times_ms)):
        node = node.variations[0]
        node.comment = (_score_text_pgn(score) + "/" if score is not None else "") + f"{ms / 1000:.3f}s"
        if ply in random_plies:
            node.comment += " random move: no time for the model"
    exporter = chess.pgn.StringExporter(headers=True, variations=False, comments=True)
    return pgn.accept(exporter) + "\n\n"


def _score_text_pgn(white_cp: int) -> str:
    """An evaluation as cutechess writes it: +0.35 in pawns, or +M3 / -M2 for mates (plies to mate)."""
    if abs(white_cp) > MATE_SCORE_CP - 1000:
        return ("+" if white_cp > 0 else "-") + f"M{MATE_SCORE_CP - abs(white_cp)}"
    return f"{white_cp / 100:+.2f}"
