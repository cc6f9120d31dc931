"""Openings: a PGN book (move sequences from the start), an EPD book (positions), or random plies.

An opening is a board whose move stack holds the opening moves, so engines get ``position startpos
moves ...`` and our model sees the whole transcript; an EPD position has no history (the engine then
prompts the model with the move number only, see the README).
"""

from __future__ import annotations

import random
from pathlib import Path

import chess
import chess.pgn

from ..errors import TranscendError


class BookError(TranscendError):
    """An opening book that cannot be used."""


def load_book(path: str | Path) -> list[chess.Board]:
    """All openings in a ``.pgn`` (main lines) or ``.epd`` file, in file order."""
    path = Path(path)
    if not path.is_file():
        raise BookError(f"{path}: no such opening book")
    suffix = path.suffix.lower()
    if suffix == ".pgn":
        openings = _load_pgn(path)
    elif suffix == ".epd":
        openings = _load_epd(path)
    else:
        raise BookError(f"{path}: an opening book must be a .pgn or .epd file")
    if not openings:
        raise BookError(f"{path}: the book has no openings")
    return openings


def _load_pgn(path: Path) -> list[chess.Board]:
    openings = []
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        while True:
            game = chess.pgn.read_game(f)
            if game is None:
                break
            if game.errors:
                raise BookError(f"{path}: opening {len(openings) + 1}: {game.errors[0]}")
            board = game.end().board()
            if board.is_game_over():
                raise BookError(f"{path}: opening {len(openings) + 1} is a finished game")
            openings.append(board)
    return openings


def _load_epd(path: Path) -> list[chess.Board]:
    openings = []
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            board = chess.Board()
            try:
                board.set_epd(line)
            except ValueError as exc:
                raise BookError(f"{path}:{number}: not an EPD position ({exc})") from None
            if not board.is_valid() or board.is_game_over():
                raise BookError(f"{path}:{number}: the position is not a playable start")
            openings.append(board)
    return openings


def add_random_plies(board: chess.Board, plies: int, rng: random.Random) -> chess.Board:
    """``board`` followed by up to ``plies`` uniformly random legal moves (never ending the game)."""
    board = board.copy()
    for _ in range(plies):
        moves = [m for m in board.legal_moves if not _ends_game(board, m)]
        if not moves:
            break
        board.push(rng.choice(moves))
    return board


def _ends_game(board: chess.Board, move: chess.Move) -> bool:
    board.push(move)
    try:
        return board.is_game_over(claim_draw=True)
    finally:
        board.pop()


def opening_for(pair: int, book: list[chess.Board] | None, random_plies: int, seed: int) -> chess.Board:
    """The start of game pair ``pair`` (both colours play it): book line ``pair`` (cycling), then
    ``random_plies`` random moves chosen by ``seed`` and ``pair``, so every pairing gets the same ones."""
    board = book[pair % len(book)].copy() if book else chess.Board()
    if random_plies:
        board = add_random_plies(board, random_plies, random.Random(f"{seed}:{pair}"))
    return board
