"""Time a move: exact move probabilities (``move`` mode) against the paper's way of picking a move.

Positions: plies 20, 60 and 100 of a real game (``tests/fixtures/games.txt``, Stockfish games).
Models: ``tiny`` and ``paper-50m`` with seeded random weights (the timing does not depend on them),
built and exported here in a temporary directory. Runtimes, all on 2 threads (``BENCH_THREADS``):

* ``onnx-fp32``, ``onnx-int8``: ``MovePolicy`` on onnxruntime (the engine), the KV cache holding the
  game up to two plies earlier, as in a game: only the last two moves and the prefix tree are fed.
* ``torch``: the same ``MovePolicy`` on the PyTorch path (``transcend.inference.torch_backend``).
* ``paper``: the paper's sampler (``transcend.sampling``) with a full recompute of the transcript for
  every symbol, 10 symbols (the space is masked so every move costs the paper's maximum of 10
  forward passes, the figure its time a move is quoted for).

Run (about 5 minutes):

    python -m pytest benchmarks/bench_policy.py --benchmark-only -p no:cacheprovider -c /dev/null \\
        --benchmark-columns=median,min,rounds --benchmark-sort=name

On a busy machine, wall time says more about the neighbours than about the code (PyTorch's thread
pool suffers most); measure CPU time on one thread instead:

    BENCH_THREADS=1 python -m pytest benchmarks/bench_policy.py ... --benchmark-timer time.process_time
"""

from __future__ import annotations

import os
from pathlib import Path

import chess
import numpy as np
import pytest
import torch

from transcend.inference.policy import MovePolicy
from transcend.inference.runtime import OnnxModel
from transcend.export import export_onnx
from transcend.model import GPT
from transcend.sampling import sample_move_text
from transcend.inference.torch_backend import TorchModel
from transcend.training import preset
from transcend.transcript import SPACE_ID

THREADS = int(os.environ.get("BENCH_THREADS", "2"))
PLIES = (20, 60, 100)
GAME = (Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "games.txt").read_text().split("\n")[0].split()
ROUNDS = {"tiny": 15, "paper-50m": 5}


def board_at(ply: int) -> chess.Board:
    board = chess.Board()
    for uci in GAME[:ply]:
        board.push_uci(uci)
    return board


@pytest.fixture(scope="module", params=["tiny", "paper-50m"])
def models(request, tmp_path_factory):
    torch.manual_seed(0)
    model = GPT(preset(request.param)[0]).eval()
    root = tmp_path_factory.mktemp(request.param)
    for quantize in ("none", "int8"):
        export_onnx(model, root / f"{quantize}.onnx", quantize=quantize)
    return request.param, model, root


def runtime(name: str, model: GPT, root: Path):
    if name == "torch":
        return TorchModel(model, threads=THREADS)
    return OnnxModel(root / f"{name.removeprefix('onnx-').replace('fp32', 'none')}.onnx", provider="cpu",
                     threads=THREADS)


@pytest.mark.parametrize("ply", PLIES)
@pytest.mark.parametrize("backend", ["onnx-fp32", "onnx-int8", "torch"])
def test_move_mode(benchmark, models, backend, ply):
    name, model, root = models
    policy = MovePolicy(runtime(backend, model, root))
    before, board = board_at(ply - 2), board_at(ply)

    def continue_game():
        policy.reset()
        policy.score_legal_moves(before)

    scores = benchmark.pedantic(policy.score_legal_moves, args=(board,), setup=continue_game,
                                rounds=ROUNDS[name], iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(model=name, runtime=backend, ply=ply, legal_moves=len(scores.moves),
                                prompt_symbols=len(scores.prompt))


@pytest.mark.parametrize("ply", PLIES)
def test_papers_way(benchmark, models, ply):
    name, model, _ = models
    torch.set_num_threads(THREADS)
    board = board_at(ply)
    prompt = MovePolicy(TorchModel(model, threads=THREADS)).prompt(board)
    calls = []

    @torch.inference_mode()
    def full_recompute(ids: np.ndarray) -> np.ndarray:
        calls.append(len(ids))
        logits = model(torch.from_numpy(np.asarray(ids, dtype=np.int64))[None])[0][0, -1].numpy().copy()
        logits[SPACE_ID] = -np.inf  # always the paper's 10 symbols
        return logits

    rng = np.random.default_rng(0)
    benchmark.pedantic(sample_move_text, args=(full_recompute, prompt, 1.0, rng),
                       rounds=2 if name == "paper-50m" else 5, iterations=1)
    benchmark.extra_info.update(model=name, runtime="paper", ply=ply, prompt_symbols=len(prompt),
                                forward_passes_per_move=len(calls) / benchmark.stats.stats.rounds)
