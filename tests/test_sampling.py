"""The paper's symbol-by-symbol move sampler (transcend.sampling), driven by small scripted models."""

from __future__ import annotations

import subprocess
import sys

import chess
import numpy as np
import pytest

from transcend.sampling import (
    MAX_MOVE_SYMBOLS,
    parse_move,
    sample_legal_move,
    sample_move_text,
    sample_move_texts,
    sample_symbol,
    temperature_softmax,
)
from transcend.transcript import VOCAB, decode, next_move_prefix


def continuation_model(table: dict[str, dict[str, float]]):
    """Next-symbol logits from the text sampled since the prompt's last '.' or space.

    ``table`` maps that text to a distribution over next symbols; anything else gives a space.
    """

    def next_logits(ids: np.ndarray) -> np.ndarray:
        text = decode(ids)
        tail = text[max(text.rfind(" "), text.rfind(".")) + 1 :]
        probs = table.get(tail, {" ": 1.0})
        logits = np.full(len(VOCAB), -1e9)
        for symbol, p in probs.items():
            logits[VOCAB.index(symbol)] = np.log(p)
        return logits

    return next_logits


def test_greedy_sampling_stops_at_the_first_space():
    model = continuation_model({"": {"N": 1.0}, "N": {"f": 1.0}, "Nf": {"3": 0.9, "#": 0.1}})
    rng = np.random.default_rng(0)
    assert sample_move_text(model, ";1.e4 e5 2.", 0.0, rng) == "Nf3"


def test_at_most_ten_symbols_without_a_space():
    def always_a(ids: np.ndarray) -> np.ndarray:
        logits = np.zeros(len(VOCAB))
        logits[VOCAB.index("a")] = 50.0
        return logits

    calls = []
    text = sample_move_text(lambda ids: (calls.append(len(ids)), always_a(ids))[1], ";1.", 1.0, np.random.default_rng(0))
    assert text == "a" * MAX_MOVE_SYMBOLS
    assert calls == list(range(3, 3 + MAX_MOVE_SYMBOLS))  # full prefix each call, growing by one


def test_a_leading_space_gives_empty_text_which_is_illegal():
    model = continuation_model({})
    assert sample_move_text(model, ";1.", 1.0, np.random.default_rng(0)) == ""
    result = sample_legal_move(model, chess.Board(), ";1.", 1.0, np.random.default_rng(0), max_attempts=3)
    assert result.move is None and result.san is None
    assert result.attempts == ("", "", "") and result.illegal_attempts == 3


def test_temperature_sharpens_and_flattens_the_symbol_distribution():
    logits = np.concatenate([np.log([0.7, 0.3]), np.full(len(VOCAB) - 2, -1e9)])
    rng = np.random.default_rng(1)
    n = 4000
    at_one = np.mean([sample_symbol(logits, 1.0, rng) == 0 for _ in range(n)])
    at_tenth = np.mean([sample_symbol(logits, 0.1, rng) == 0 for _ in range(n)])
    at_five = np.mean([sample_symbol(logits, 5.0, rng) == 0 for _ in range(n)])
    assert abs(at_one - 0.7) < 0.03
    assert at_tenth > 0.99  # 0.7^10 / (0.7^10 + 0.3^10) = 0.9998
    assert abs(at_five - 0.7**0.2 / (0.7**0.2 + 0.3**0.2)) < 0.03  # about 0.54
    assert sample_symbol(logits, 0.0, rng) == 0


def test_temperature_acts_on_moves():
    log_probs = np.log(np.array([0.5, 0.3, 0.2]))
    np.testing.assert_allclose(temperature_softmax(log_probs, 1.0), [0.5, 0.3, 0.2])
    assert temperature_softmax(log_probs, 0.0).tolist() == [1.0, 0.0, 0.0]
    sharp = temperature_softmax(log_probs, 0.1)
    assert sharp[0] > 0.99 and np.isclose(sharp.sum(), 1.0)


def test_illegal_attempts_are_retried_and_counted():
    # Half the time the model writes Qh5 (illegal at the start), half the time e4.
    model = continuation_model({"": {"Q": 0.5, "e": 0.5}, "Q": {"h": 1.0}, "Qh": {"5": 1.0}, "e": {"4": 1.0}})
    board = chess.Board()
    seen_illegal = 0
    for seed in range(20):
        result = sample_legal_move(model, board, next_move_prefix([]), 1.0, np.random.default_rng(seed))
        assert set(result.attempts) <= {"Qh5", "e4"}
        if result.move is not None:
            assert result.move == chess.Move.from_uci("e2e4") and result.san == "e4"
            assert result.attempts[-1] == "e4"
            assert result.illegal_attempts == len(result.attempts) - 1 == result.attempts.count("Qh5")
        else:
            assert result.attempts == ("Qh5",) * 5 and result.illegal_attempts == 5
        seen_illegal += result.illegal_attempts
    assert seen_illegal > 0


def test_parse_move_is_pythonchess_san_without_null_moves():
    board = chess.Board()
    assert parse_move(board, "e4") == chess.Move.from_uci("e2e4")
    assert parse_move(board, "Nf3") == chess.Move.from_uci("g1f3")
    for text in ("", "--", "0000", "Z0", "e5", "Ke2", "1-0", "xx", "O-O"):
        assert parse_move(board, text) is None, text


def test_batched_sampling_matches_one_prompt_at_a_time():
    model = continuation_model({"": {"e": 0.4, "d": 0.3, "N": 0.3}, "e": {"4": 0.5, "3": 0.5},
                                "d": {"4": 1.0}, "N": {"f": 0.5, "c": 0.5}, "Nf": {"3": 1.0}, "Nc": {"3": 1.0}})
    prompts = [";1.", ";1.e4 e5 2.", ";1.d4 d5 2.c4 e6 3."]
    batched = sample_move_texts(lambda seqs: np.stack([model(s) for s in seqs]), prompts, 1.0,
                                [np.random.default_rng(i) for i in range(3)])
    single = [sample_move_text(model, p, 1.0, np.random.default_rng(i)) for i, p in enumerate(prompts)]
    assert batched == single


def test_bad_logits_shape_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        sample_move_text(lambda ids: np.zeros(5), ";1.", 1.0, np.random.default_rng(0))


def test_sampling_never_imports_torch():
    code = "import sys, transcend.sampling; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
