"""What quantization costs: how often int8 and fp16 exports pick the same most probable move as fp32.

Every position of the real games in ``tests/fixtures/games.txt`` (about 500), scored in ``move`` mode
by the fp32, int8 and fp16 exports of one model. Run on a trained model (a run directory, a
.safetensors file or a nanoGPT ckpt.pt):

    python benchmarks/bench_policy_quantization.py RUN_DIR

It prints, per quantization, the share of positions whose most probable move agrees with fp32, the
mean total-variation distance between the move distributions, and the file size.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import chess
import numpy as np

from transcend.inference.policy import MovePolicy
from transcend.inference.runtime import OnnxModel
from transcend.export import export_onnx
from transcend.model import load_model

GAMES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "games.txt"


def positions() -> list[chess.Board]:
    boards = []
    for line in GAMES.read_text().split("\n"):
        board = chess.Board()
        for uci in line.split():
            boards.append(board.copy())
            board.push_uci(uci)
    return boards


def main(source: str) -> None:
    model = load_model(Path(source))
    boards = positions()
    with tempfile.TemporaryDirectory() as tmp:
        scores = {}
        for quantize in ("none", "int8", "fp16"):
            path = Path(tmp) / f"{quantize}.onnx"
            export_onnx(model, path, quantize=quantize)
            policy = MovePolicy(OnnxModel(path, provider="cpu", threads=1))
            scores[quantize] = ([policy.score_legal_moves(b).log_probs for b in boards], path.stat().st_size)
        reference, size = scores["none"]
        print(f"{len(boards)} positions; fp32 file {size / 1e6:.1f} MB")
        for quantize in ("int8", "fp16"):
            other, other_size = scores[quantize]
            agree = np.mean([np.argmax(a) == np.argmax(b) for a, b in zip(reference, other)])
            tv = np.mean([0.5 * np.abs(_normalised(a) - _normalised(b)).sum() for a, b in zip(reference, other)])
            print(f"{quantize}: same most probable move {agree:.1%}, mean total variation {tv:.4f}, "
                  f"file {other_size / 1e6:.1f} MB")


def _normalised(log_probs: np.ndarray) -> np.ndarray:
    p = np.exp(log_probs - log_probs.max())
    return p / p.sum()


if __name__ == "__main__":
    main(sys.argv[1])
