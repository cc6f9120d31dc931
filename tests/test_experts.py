"""Expert specs and real experts (Stockfish, random, noise)."""

from __future__ import annotations

import chess
import pytest

from transcend import experts
from transcend.experts import (ExpertCrashed, ExpertError, ExpertSpec, find_stockfish, go_command, open_expert,
                               parse_expert_spec, stockfish_limit)


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


@pytest.mark.parametrize(
    "settings, line",
    [({"nodes": 200}, "go nodes 200"), ({"skill": 3, "depth": 2}, "go depth 2"), ({"movetime": 50}, "go movetime 50"),
     ({"skill": 1}, "go movetime 100")],
)
def test_go_command_of_each_limit(settings, line):
    assert go_command(stockfish_limit(settings)) == line


def test_stockfish_plays_from_a_fen_and_repeats_itself_after_new_game(stockfish):
    board = chess.Board("r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3")
    expert = open_expert("stockfish:nodes=300", stockfish)
    try:
        games = []
        for _ in range(2):
            expert.new_game(0)
            game = board.copy()
            for _ in range(8):
                game.push(expert.choose(game))
            games.append(game.move_stack)
    finally:
        expert.close()
    assert games[0] == games[1]  # a cleared hash and a node limit: the same search


def test_a_dead_stockfish_is_a_crash_not_a_hang(stockfish):
    expert = open_expert("stockfish:nodes=50", stockfish)
    expert.engine.process.kill()
    expert.engine.process.wait()
    with pytest.raises(ExpertCrashed, match="exited"):
        expert.choose(chess.Board())
    expert.close()


@pytest.mark.parametrize("script", ["echo hello", "exec cat"], ids=["exits", "never-answers"])
def test_a_program_that_is_not_a_uci_engine_is_refused(tmp_path, monkeypatch, script):
    monkeypatch.setattr(experts, "HANDSHAKE_TIMEOUT_S", 0.5)
    fake = tmp_path / "fake-stockfish"
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)
    with pytest.raises(ExpertError, match="cannot start Stockfish .*not a UCI engine"):
        open_expert("stockfish:nodes=50", str(fake))
