"""The transcript codec against real games and the paper's exact format."""

from __future__ import annotations

import random

import chess
import numpy as np
import pytest

from conftest import random_game, transcript_of
from transcend.transcript import (
    GAME_START_ID,
    VOCAB,
    TranscriptError,
    decode,
    encode,
    next_move_prefix,
    sans_from_transcript,
    transcript_from_sans,
)


def play(*sans: str) -> chess.Board:
    board = chess.Board()
    for san in sans:
        board.push_san(san)
    return board


def test_vocabulary_is_the_papers():
    assert VOCAB == " #+-.0123456789;=BKNOQRabcdefghx"
    assert len(VOCAB) == 32
    assert VOCAB.index(" ") == 0 and VOCAB.index(";") == 15 == GAME_START_ID and VOCAB.index("x") == 31


def test_format_of_an_opening():
    board = play("e4", "e5", "Nf3", "Nc6", "Bb5", "a6")
    assert transcript_of(board) == ";1.e4 e5 2.Nf3 Nc6 3.Bb5 a6"


def test_mate_and_capture():
    board = play("e4", "e5", "Bc4", "Nc6", "Qh5", "Nf6", "Qxf7#")
    assert transcript_of(board) == ";1.e4 e5 2.Bc4 Nc6 3.Qh5 Nf6 4.Qxf7#"


def test_file_disambiguation():
    board = play("d4", "d5", "Nf3", "Nf6", "e3", "Nbd7")
    assert transcript_of(board).endswith("3.e3 Nbd7")


def test_castling_both_sides_and_en_passant():
    kingside = play("e4", "e5", "Nf3", "Nc6", "Bc4", "Bc5", "O-O")
    assert transcript_of(kingside).endswith("4.O-O")
    queenside = play("d4", "d5", "Nc3", "Nc6", "Bf4", "Bf5", "Qd2", "Qd7", "O-O-O", "O-O-O")
    assert transcript_of(queenside).endswith("5.O-O-O O-O-O")
    ep = play("e4", "a6", "e5", "d5", "exd6")
    assert transcript_of(ep) == ";1.e4 a6 2.e5 d5 3.exd6"


def test_rank_and_double_disambiguation_encode():
    # Rooks on e1 and e3 both reach e2; three queens make Qh4xe1 necessary.
    rooks = chess.Board("1k6/8/8/8/8/4R3/8/K3R3 w - - 0 1")
    assert rooks.san(chess.Move.from_uci("e1e2")) == "R1e2"
    queens = chess.Board("1k6/8/8/8/4Q2Q/8/8/K3r2Q w - - 0 1")
    san = queens.san(chess.Move.from_uci("h4e1"))
    assert san == "Qh4xe1"
    assert decode(encode(transcript_from_sans(["e4", san]))) == ";1.e4 Qh4xe1"


def _find_in_random_games(predicate, seeds=range(3000)):
    for seed in seeds:
        board = random_game(random.Random(seed), max_plies=300)
        text = transcript_of(board)
        if predicate(text):
            return text
    pytest.fail("no random game had the feature")


def test_promotion_with_check_from_a_real_game():
    text = _find_in_random_games(lambda t: "=Q+" in t or "=Q#" in t)
    ids = encode(text)
    assert decode(ids) == text


@pytest.mark.parametrize("seed", range(20))
def test_round_trip_on_long_random_games(seed):
    board = random_game(random.Random(seed), max_plies=400)
    text = transcript_of(board)
    assert text.startswith(";1.")
    ids = encode(text)
    assert ids.dtype == np.uint8 and ids.max() < 32
    assert decode(ids) == text
    replay = chess.Board()
    for san in sans_from_transcript(text):
        replay.push_san(san)
    assert replay.board_fen() == board.board_fen()


def test_unknown_symbol_is_named_with_its_position():
    with pytest.raises(TranscriptError, match=r"'Z' at position 4"):
        encode(";1.eZ4")
    with pytest.raises(TranscriptError, match="position 3"):
        encode(";1.é4")
    with pytest.raises(TranscriptError):
        decode([0, 32])


def test_next_move_prefix_is_the_prompt():
    assert next_move_prefix([]) == ";1."
    assert next_move_prefix(["e4"]) == ";1.e4 "
    assert next_move_prefix(["e4", "e5"]) == ";1.e4 e5 2."
    sans = ["e4", "e5", "Nf3"]
    assert next_move_prefix(sans) + "Nc6" == transcript_from_sans(sans + ["Nc6"])
