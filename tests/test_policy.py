"""Move probabilities: the prefix tree against brute force, the KV cache, the PyTorch path, the
context fallback, FEN positions, token mode and the runtime's providers, on the trained tiny model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import chess
import numpy as np
import pytest

from transcend.inference.policy import (
    MovePolicy,
    build_move_tree,
    choose_move,
    fit_context,
    game_prompt,
    log_softmax,
)
from transcend.inference.runtime import BUNDLED_MODEL, ModelError, OnnxModel
from transcend.transcript import SPACE_ID, encode

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_games() -> list[list[str]]:
    return [line.split() for line in (FIXTURES / "games.txt").read_text().splitlines()]


def board_at(moves: list[str], ply: int, fen: str | None = None) -> chess.Board:
    board = chess.Board(fen) if fen else chess.Board()
    for uci in moves[:ply]:
        board.push_uci(uci)
    return board


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    """The tiny preset with seeded random weights (the trained fixture costs minutes under load)."""
    import torch

    from transcend.model import GPT, save_weights
    from transcend.training import preset

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("policy") / "tiny.safetensors"
    save_weights(GPT(preset("tiny")[0]), path)
    return path


@pytest.fixture(scope="module")
def tiny_model_onnx(tiny_weights) -> Path:
    from transcend.export import export

    out = tiny_weights.with_suffix(".onnx")
    export(tiny_weights, out)
    return out


@pytest.fixture(scope="module")
def onnx_model(tiny_model_onnx) -> OnnxModel:
    return OnnxModel(tiny_model_onnx, provider="cpu", threads=1)


@pytest.fixture(scope="module")
def torch_model(tiny_weights):
    from transcend.inference.torch_backend import TorchModel

    return TorchModel(tiny_weights, threads=1)


def brute_force_log_probs(model, prompt: str, sans: list[str]) -> np.ndarray:
    """Each move on its own: the whole prompt + SAN run through the model without any cache or tree."""
    out = []
    for san in sans:
        ids = encode(prompt + san + " ").astype(np.int64)
        n = len(ids) - 1
        keys, values = model.empty_cache()
        step = model.step(ids[None, :n], np.arange(n)[None], np.tri(n, dtype=bool)[None], keys, values)
        logp = log_softmax(step.logits[0].astype(np.float64))
        out.append(sum(logp[i, ids[i + 1]] for i in range(len(prompt) - 1, n)))
    return np.array(out)


@pytest.mark.parametrize("model_path", ["tiny", "bundled"])
def test_tree_gives_each_moves_exact_probability(model_path, tiny_model_onnx):
    # Both ONNX formats: the current export (format 2) and the bundled model.
    model = OnnxModel(tiny_model_onnx if model_path == "tiny" else BUNDLED_MODEL, provider="cpu", threads=1)
    game = fixture_games()[0]
    for ply in (0, 9, 40):
        board = board_at(game, ply)
        scores = MovePolicy(model).score_legal_moves(board)
        expected = brute_force_log_probs(model, scores.prompt, scores.sans)
        np.testing.assert_allclose(scores.log_probs, expected, atol=2e-4)
        assert np.exp(scores.log_probs).sum() <= 1.0 + 1e-5


def test_tree_has_one_node_per_distinct_prefix():
    sans = ["Nf3", "Nc3", "Nxe5", "e4", "e3", "exd5"]
    tree = build_move_tree(sans)
    prefixes = {san[:i] for san in sans for i in range(1, len(san) + 1)}
    assert len(tree.tokens) == len(prefixes)
    assert tree.max_depth == 4
    # Each move is scored on its symbols and the space after it.
    assert len(tree.score_symbols) == sum(len(s) + 1 for s in sans)
    assert (tree.score_symbols[np.r_[np.cumsum([len(s) + 1 for s in sans]) - 1]] == SPACE_ID).all()


def test_kv_cache_gives_the_same_probabilities_as_a_fresh_start(onnx_model):
    game = fixture_games()[1]
    cached = MovePolicy(onnx_model)
    for ply in list(range(0, 12)) + [30, 31, 8]:  # a continuing game, a jump ahead, a jump back
        board = board_at(game, ply)
        a = cached.score_legal_moves(board)
        b = MovePolicy(onnx_model).score_legal_moves(board)
        np.testing.assert_allclose(a.log_probs, b.log_probs, atol=1e-5)
        assert a.prompt == b.prompt


def test_a_continuing_game_feeds_only_the_new_symbols(onnx_model):
    game = fixture_games()[0]
    policy = MovePolicy(onnx_model)
    policy.score_legal_moves(board_at(game, 20))
    before = len(policy._ids)
    scores = policy.score_legal_moves(board_at(game, 22))
    assert len(policy._ids) == len(encode(scores.prompt))
    assert policy._keys.shape[3] == len(policy._ids) > before


def test_pytorch_path_gives_the_same_probabilities(onnx_model, torch_model):
    game = fixture_games()[2]
    onnx_policy, torch_policy = MovePolicy(onnx_model), MovePolicy(torch_model)
    for ply in (0, 1, 25, 26, 70):
        board = board_at(game, ply)
        a, b = onnx_policy.score_legal_moves(board), torch_policy.score_legal_moves(board)
        assert a.sans == b.sans
        np.testing.assert_allclose(a.log_probs, b.log_probs, atol=1e-4)


def test_games_longer_than_the_context_still_get_legal_moves(onnx_model):
    rng = np.random.default_rng(0)
    board = chess.Board()
    policy = MovePolicy(onnx_model)  # tiny: 512 symbols of context
    cuts = set()
    while len(game_prompt(board)) < 1.6 * policy.room and not board.is_game_over():
        scores = policy.score_legal_moves(board)
        assert len(scores.prompt) <= policy.room
        assert scores.prompt.startswith(";") and (len(board.move_stack) < 60 or scores.prompt[1].isdigit())
        cuts.add(len(game_prompt(board)) - len(scores.prompt))
        board.push(choose_move(scores, 1.0, rng))
    assert len(game_prompt(board)) >= 1.6 * policy.room
    assert len(cuts) <= 4  # the cut moves in steps of half the context, not at every move
    fresh = MovePolicy(onnx_model).score_legal_moves(board)
    np.testing.assert_allclose(policy.score_legal_moves(board).log_probs, fresh.log_probs, atol=1e-5)


def test_fit_context_keeps_whole_moves_from_a_white_move_number():
    prompt = ";" + " ".join(f"{n}.Nf3 Nf6" for n in range(1, 60)) + " 60."
    fitted = fit_context(prompt, 200)
    assert len(fitted) <= 200 and fitted.startswith(";") and fitted.endswith(" 60.")
    assert fitted[1:].split(".")[0].isdigit() and prompt.endswith(fitted[1:])
    assert fit_context(prompt[:150], 200) == prompt[:150]


def test_fen_positions_start_book_and_fallback(onnx_model):
    policy = MovePolicy(onnx_model)
    # The standard start given as a FEN is the start.
    assert policy.score_legal_moves(chess.Board(chess.STARTING_FEN)).prompt == ";1."
    # A book position reachable from the start: the prompt is a history that leads to it.
    book = chess.Board("r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3")
    book.push_uci("f1b5")
    scores = policy.score_legal_moves(book)
    assert scores.prompt.startswith(";1.") and scores.prompt.endswith(" 3.Bb5 ")
    replay = chess.Board()
    for san in scores.prompt[1:].replace(".", ". ").split():
        if not san.endswith("."):
            replay.push_san(san)
    assert replay.board_fen() == book.board_fen()
    # Not reachable (an endgame): the documented fallback, still a legal move.
    endgame = chess.Board("8/8/4k3/8/8/2K5/8/7R b - - 10 50")
    scores = policy.score_legal_moves(endgame)
    assert scores.prompt == ";50.-- "
    assert endgame.is_legal(choose_move(scores, 0.0, np.random.default_rng(0)))
    endgame.push_uci("e6d5")
    assert policy.score_legal_moves(endgame).prompt == ";50.-- Kd5 51."


def test_a_history_decided_on_a_clock_holds_for_the_whole_game(onnx_model):
    book = "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3"  # found by the full search
    in_time = MovePolicy(onnx_model)
    in_time.settle_history(chess.Board(book), None)
    assert in_time.score_legal_moves(chess.Board(book)).prompt.endswith(" 3.")
    out_of_time = MovePolicy(onnx_model)
    out_of_time.settle_history(chess.Board(book), 0.0)  # no time at all: the search stops at once
    board = chess.Board(book)
    assert out_of_time.score_legal_moves(board).prompt == ";3."
    board.push_uci("f1b5")
    board.push_uci("a7a6")
    out_of_time.settle_history(board, None)  # decided already: the game keeps its transcript
    assert out_of_time.score_legal_moves(board).prompt == ";3.Bb5 a6 4."


def test_token_mode_samples_legal_moves_and_falls_back(onnx_model):
    game = fixture_games()[3]
    rng = np.random.default_rng(1)
    # The bundled model was trained on games: at T = 0 it mostly writes legal moves.
    trained = MovePolicy(OnnxModel(BUNDLED_MODEL, provider="cpu", threads=1))
    results = [trained.token_move(board_at(game, ply), 0.0, rng) for ply in range(0, 10)]
    assert all(board_at(game, ply).is_legal(r.move) for ply, r in enumerate(results))
    assert sum(not r.fell_back for r in results) >= 2
    assert all(r.illegal_attempts == len(r.attempts) - (not r.fell_back) for r in results)
    # Random weights at a high temperature with one attempt: texts that are not legal fall back.
    hot = [MovePolicy(onnx_model).token_move(board_at(game, ply), 3.0, rng, attempts=1) for ply in range(20, 35)]
    fell = [r for r in hot if r.fell_back]
    assert fell and all(r.illegal_attempts == 1 and len(r.attempts) == 1 for r in fell)
    assert all(board_at(game, 20 + i).is_legal(r.move) for i, r in enumerate(hot))


def test_cuda_asked_for_is_used_or_a_clear_error(tiny_model_onnx):
    try:
        model = OnnxModel(tiny_model_onnx, provider="cuda")
    except ModelError as exc:
        assert "CUDA was asked for" in str(exc)
    else:
        assert model.providers[0] == "CUDAExecutionProvider"
    assert OnnxModel(tiny_model_onnx, provider="auto").providers[-1] == "CPUExecutionProvider"


def run_policy(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "transcend.cli", "policy", *args], capture_output=True, text=True)


def test_policy_command_onnx_and_pytorch_agree(tiny_model_onnx, tiny_weights):
    import json

    moves = "e2e4 e7e5 g1f3"
    a = run_policy(str(tiny_model_onnx), "--moves", moves, "--json")
    b = run_policy(str(tiny_weights), "--moves", moves, "--json", "--threads", "1")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    pa, pb = json.loads(a.stdout), json.loads(b.stdout)
    board = board_at(moves.split(), 3)
    assert set(pa) == {m.uci() for m in board.legal_moves} == set(pb)
    assert list(pa) == sorted(pa, key=pa.get, reverse=True)
    assert max(abs(pa[m] - pb[m]) / pa[m] for m in pa) < 1e-3
    table = run_policy(str(tiny_model_onnx), "--moves", moves, "--temperature", "0.5")
    lines = table.stdout.splitlines()
    assert lines[0] == "prompt: ;1.e4 e5 2.Nf3 " and "p(T=0.5)" in lines[1]
    assert lines[2].split()[0] == next(iter(pa))


@pytest.mark.parametrize("args, message", [
    (["--moves", "e2e4 e2e4"], "move 2 'e2e4' is not legal"),
    (["--moves", "hello"], "is not a UCI move"),
    (["--fen", "not a fen"], "bad FEN"),
])
def test_policy_command_bad_input_is_one_line(tiny_model_onnx, args, message):
    result = run_policy(str(tiny_model_onnx), *args)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
