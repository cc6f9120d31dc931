"""The paper's game transcript format and its 32-symbol vocabulary.

A game is one string: ``;1.e4 e5 2.Nf3 Nc6`` -- a leading ``;``, move numbers glued to White's move,
one space between tokens, SAN as python-chess writes it, no result and no comments.

This module is imported by the engine, so it must not import torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import chess
import numpy as np

from .errors import TranscendError

VOCAB = " #+-.0123456789;=BKNOQRabcdefghx"
"""The paper's vocabulary (its ``meta.pkl``): symbol ``VOCAB[i]`` has id ``i``."""

GAME_START = ";"
GAME_START_ID = VOCAB.index(GAME_START)  # 15
SPACE_ID = VOCAB.index(" ")  # 0

_ENCODE_TABLE = np.full(256, 255, dtype=np.uint8)
for _i, _ch in enumerate(VOCAB):
    _ENCODE_TABLE[ord(_ch)] = _i
_VOCAB_ARRAY = np.frombuffer(VOCAB.encode("ascii"), dtype=np.uint8)


class TranscriptError(TranscendError):
    """A string or id sequence that is not a valid transcript."""


def encode(text: str) -> np.ndarray:
    """Encode a transcript as ``uint8`` token ids; an unknown symbol is an error naming it and where."""
    raw = text.encode("utf-8", errors="surrogatepass")
    ids = _ENCODE_TABLE[np.frombuffer(raw, dtype=np.uint8)]
    bad = np.flatnonzero(ids == 255)
    if bad.size:
        byte_pos = int(bad[0])
        char_pos = len(raw[:byte_pos].decode("utf-8", errors="ignore"))
        symbol = text[char_pos] if char_pos < len(text) else "?"
        raise TranscriptError(f"symbol {symbol!r} at position {char_pos} is not in the vocabulary")
    return ids


def decode(ids: Iterable[int] | np.ndarray) -> str:
    """Turn token ids back into text; an id outside 0..31 is an error."""
    arr = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= len(VOCAB)):
        pos = int(np.flatnonzero((arr < 0) | (arr >= len(VOCAB)))[0])
        raise TranscriptError(f"token id {int(arr[pos])} at position {pos} is outside the vocabulary")
    return _VOCAB_ARRAY[arr].tobytes().decode("ascii")


def transcript_from_sans(sans: Sequence[str]) -> str:
    """The transcript of a game from the standard start: ``;1.e4 e5 2.Nf3``."""
    parts = []
    for ply, san in enumerate(sans):
        parts.append(f"{ply // 2 + 1}.{san}" if ply % 2 == 0 else san)
    return GAME_START + " ".join(parts)


def next_move_prefix(sans: Sequence[str]) -> str:
    """The transcript up to where the next move's SAN begins (the model's prompt).

    ``[]`` gives ``;1.``, ``["e4"]`` gives ``;1.e4 `` and ``["e4", "e5"]`` gives ``;1.e4 e5 2.``.
    """
    text = transcript_from_sans(sans)
    ply = len(sans)
    if ply:
        text += " "
    if ply % 2 == 0:
        text += f"{ply // 2 + 1}."
    return text


def sans_from_moves(moves: Iterable[chess.Move], board: chess.Board | None = None) -> list[str]:
    """SAN of each move, replayed from ``board`` (the standard start when omitted); raises on illegal."""
    board = chess.Board() if board is None else board.copy(stack=False)
    sans = []
    for move in moves:
        if not board.is_legal(move):
            raise TranscriptError(f"illegal move {move.uci()} in position {board.fen()}")
        sans.append(board.san(move))
        board.push(move)
    return sans


def sans_from_transcript(text: str) -> list[str]:
    """Split a transcript back into SAN moves (no legality check)."""
    if not text.startswith(GAME_START):
        raise TranscriptError("a transcript starts with ';'")
    sans = []
    for token in text[1:].split(" "):
        if not token:
            continue
        if "." in token:
            token = token.split(".", 1)[1]
        if token:
            sans.append(token)
    return sans


def parse_uci_move(board: chess.Board, text: str) -> chess.Move:
    """The legal move that ``text`` (UCI notation: ``e2e4``, ``e7e8q``) denotes on ``board``.

    Raises ``chess.InvalidMoveError`` (a ``ValueError``) for text that is not a UCI move and
    ``chess.IllegalMoveError`` for a move that is not legal here, the null move ``0000`` included.
    """
    move = board.parse_uci(text)
    if not move:
        raise chess.IllegalMoveError(f"the null move {text!r} is not a legal move")
    return move
