"""``transcend-uci``: the model as a UCI engine.

The process never imports torch; the ONNX session is loaded in the background right after start-up,
so ``uciok`` comes at once and ``isready`` is answered when the model is ready.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

import chess
import numpy as np

from .policy import MovePolicy, choose_move
from .runtime import BUNDLED_MODEL, ModelError, OnnxModel

ENGINE_NAME = "transcend"
ENGINE_AUTHOR = "the transcend developers"


class UciEngine:
    def __init__(self, model_path: Path, temperature: float, seed: int | None, provider: str, out=None) -> None:
        self.model_path = model_path
        self.temperature = temperature
        self.provider = provider
        self.rng = np.random.default_rng(seed)
        self.board = chess.Board()
        self.out = out or sys.stdout
        self._policy: MovePolicy | None = None
        self._load_error: str | None = None
        self._loaded = threading.Event()

    # -- output ---------------------------------------------------------------------------------
    def send(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def info_string(self, text: str) -> None:
        self.send("info string " + " ".join(text.split()))

    # -- model ----------------------------------------------------------------------------------
    def start_loading(self) -> None:
        threading.Thread(target=self._load, daemon=True).start()

    def _load(self) -> None:
        try:
            self._policy = MovePolicy(OnnxModel(self.model_path, provider=self.provider))
        except ModelError as exc:
            self._load_error = str(exc)
        finally:
            self._loaded.set()

    def policy(self) -> MovePolicy | None:
        self._loaded.wait()
        if self._load_error:
            self.info_string(f"error: {self._load_error}")
        return self._policy

    # -- commands -------------------------------------------------------------------------------
    def handle(self, line: str) -> bool:
        """Handle one input line; False means quit."""
        parts = line.strip().split()
        if not parts:
            return True
        cmd, args = parts[0], parts[1:]
        if cmd == "uci":
            self.send(f"id name {ENGINE_NAME}")
            self.send(f"id author {ENGINE_AUTHOR}")
            self.send(f"option name Temperature type string default {self.temperature:g}")
            self.send("uciok")
        elif cmd == "isready":
            self.policy()
            self.send("readyok")
        elif cmd == "ucinewgame":
            self.board = chess.Board()
            if self._policy is not None:
                self._policy.reset()
        elif cmd == "setoption":
            self.set_option(args)
        elif cmd == "position":
            self.set_position(args)
        elif cmd == "go":
            self.go()
        elif cmd in ("stop", "ponderhit", "debug", "register"):
            pass  # searches are synchronous in this version
        elif cmd == "quit":
            return False
        else:
            self.info_string(f"unknown command: {cmd[:40]}")
        return True

    def set_option(self, args: list[str]) -> None:
        text = " ".join(args)
        if not text.lower().startswith("name "):
            self.info_string("setoption needs: setoption name <name> [value <value>]")
            return
        name, _, value = text[5:].partition(" value ")
        if name.strip().lower() == "temperature":
            try:
                t = float(value)
                if not (0.0 <= t <= 100.0):
                    raise ValueError
            except ValueError:
                self.info_string(f"Temperature must be a number from 0 to 100, not {value.strip()!r}")
                return
            self.temperature = t
        else:
            self.info_string(f"unknown option: {name.strip()[:40]}")

    def set_position(self, args: list[str]) -> None:
        try:
            if args and args[0] == "startpos":
                board, rest = chess.Board(), args[1:]
            elif args and args[0] == "fen":
                end = args.index("moves") if "moves" in args else len(args)
                board, rest = chess.Board(" ".join(args[1:end])), args[end:]
            else:
                raise ValueError("position needs startpos or fen")
            if rest:
                if rest[0] != "moves":
                    raise ValueError(f"expected 'moves', got {rest[0]!r}")
                for uci in rest[1:]:
                    move = chess.Move.from_uci(uci)
                    if not board.is_legal(move):
                        raise ValueError(f"illegal move {uci} in {board.fen()}")
                    board.push(move)
        except ValueError as exc:
            self.info_string(f"position ignored: {exc}")
            return
        self.board = board

    def go(self) -> None:
        if not any(True for _ in self.board.legal_moves):
            self.send("bestmove 0000")
            return
        policy = self.policy()
        if policy is None:
            move = next(iter(self.board.legal_moves))
        else:
            scores = policy.score_legal_moves(self.board)
            move = choose_move(scores, self.temperature, self.rng)
        self.send(f"bestmove {move.uci()}")

    def run(self, stream) -> None:
        for line in stream:
            if not self.handle(line):
                break


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="transcend-uci", description="The transcend model as a UCI chess engine.")
    parser.add_argument("--model", type=Path, default=BUNDLED_MODEL, help="exported .onnx model (default: bundled)")
    parser.add_argument("--temperature", type=float, default=0.001, help="sampling temperature over moves (0 = best)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for reproducible games")
    parser.add_argument("--provider", choices=["auto", "cuda", "cpu"], default="auto")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        print(f"transcend-uci: error: {args.model}: no such model file", file=sys.stderr)
        raise SystemExit(1)
    if args.temperature < 0:
        print("transcend-uci: error: --temperature must be >= 0", file=sys.stderr)
        raise SystemExit(2)
    engine = UciEngine(args.model, args.temperature, args.seed, args.provider)
    engine.start_loading()
    try:
        engine.run(sys.stdin)
    except (BrokenPipeError, KeyboardInterrupt):
        pass


if __name__ == "__main__":
    main()
