"""Expert specs and real experts (Stockfish, random, noise)."""

from __future__ import annotations

import chess
import pytest

from transcend.experts import ExpertError, ExpertSpec, find_stockfish, open_expert, parse_expert_spec


@pytest.mark.parametrize(
    "text, spec",
    [
        ("stockfish:skill=3", ExpertSpec("stockfish", {"skill": 3})),
        ("stockfish:skill=0,depth=1", ExpertSpec("stockfish", {"skill": 0, "depth": 1})),
        ("stockfish:nodes=200", ExpertSpec("stockfish", {"nodes": 200})),
        ("random", ExpertSpec("random")),
        ("eps=0.2+stockfish:skill=1", ExpertSpec("stockfish", {"skill": 1}, eps=0.2)),
    ],
)
def test_specs_parse_and_print_back(text, spec):
    assert parse_expert_spec(text) == spec
    assert str(spec) == text


@pytest.mark.parametrize(
    "text, message",
    [
        ("stockfish:skill=21", "skill must be from 0 to 20"),
        ("stockfish:speed=3", "unknown setting"),
        ("gnuchess", "unknown expert"),
        ("eps=2+random", "between 0 and 1"),
        ("eps=0.1", "needs an expert"),
        ("random:skill=1", "takes no settings"),
    ],
)
def test_bad_specs_are_named(text, message):
    with pytest.raises(ExpertError, match=message):
        parse_expert_spec(text)


def test_missing_stockfish_binary_is_a_clear_error(tmp_path):
    with pytest.raises(ExpertError, match="no such Stockfish binary"):
        find_stockfish(tmp_path / "nope")


def test_real_experts_play_legal_moves(stockfish):
    board = chess.Board()
    for spec in ["stockfish:skill=0,nodes=50", "random", "eps=0.5+stockfish:depth=1"]:
        expert = open_expert(spec, stockfish, seed=1)
        try:
            for _ in range(6):
                move = expert.choose(board)
                assert board.is_legal(move)
                board.push(move)
        finally:
            expert.close()


def test_noise_with_eps_one_is_uniform_random(stockfish):
    expert = open_expert("eps=1+stockfish:depth=1", stockfish, seed=7)
    try:
        moves = {expert.choose(chess.Board()).uci() for _ in range(60)}
    finally:
        expert.close()
    assert len(moves) >= 12  # Stockfish alone would always play one move here
