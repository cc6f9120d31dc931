"""Experts of known strength: Stockfish at a skill level or search limit, random play, and noise.

Spec grammar (docs/formats.md, "Expert specs"), used by ``data synth`` and by tournaments:

    spec      := "eps=" FLOAT "+" spec | "random" | "stockfish" [":" setting ("," setting)*]
    setting   := skill=0..20 | depth=N | nodes=N | movetime=MS

``eps=0.2+stockfish:skill=1`` plays a uniformly random legal move with probability 0.2, else the
wrapped expert's move. A Stockfish spec with no depth, nodes or movetime searches 100 ms a move.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import chess
import chess.engine

from .errors import TranscendError
from .transcript import parse_uci_move

DEFAULT_MOVETIME_MS = 100
HANDSHAKE_TIMEOUT_S = 10.0
"""How long Stockfish may take to answer ``uci`` and ``isready`` when it starts."""
_STOCKFISH_SETTINGS = {"skill": (0, 20), "depth": (1, 100), "nodes": (1, 10**9), "movetime": (1, 3_600_000)}


class ExpertError(TranscendError):
    """A bad expert spec or an expert that cannot be started."""


class ExpertCrashed(ExpertError):
    """An expert's engine process died or stopped speaking UCI."""


def find_stockfish(path: str | Path | None = None) -> str:
    """The Stockfish binary: ``path`` if given, else on PATH, else Debian's ``/usr/games/stockfish``."""
    if path:
        resolved = shutil.which(str(path))
        if not resolved:
            raise ExpertError(f"{path}: no such Stockfish binary (or not executable)")
        return resolved
    found = shutil.which("stockfish") or shutil.which("/usr/games/stockfish")
    if not found:
        raise ExpertError("Stockfish not found: install it (apt-get install stockfish) or pass --stockfish PATH")
    return found


@dataclass(frozen=True)
class ExpertSpec:
    kind: str  # "stockfish" or "random"
    settings: dict[str, int] = field(default_factory=dict)
    eps: float = 0.0

    def __str__(self) -> str:
        base = self.kind
        if self.settings:
            base += ":" + ",".join(f"{k}={v}" for k, v in self.settings.items())
        return f"eps={self.eps:g}+{base}" if self.eps else base


def parse_expert_spec(text: str) -> ExpertSpec:
    """Parse an expert spec; errors name what is wrong."""
    original = text
    text = text.strip()
    eps = 0.0
    if text.startswith("eps="):
        head, plus, text = text.partition("+")
        if not plus:
            raise ExpertError(f"{original!r}: a noise wrapper needs an expert after '+' (eps=0.2+random)")
        try:
            eps = float(head[4:])
        except ValueError:
            raise ExpertError(f"{original!r}: eps must be a number") from None
        if not 0.0 <= eps <= 1.0:
            raise ExpertError(f"{original!r}: eps must be between 0 and 1")
        if text.startswith("eps="):
            raise ExpertError(f"{original!r}: one noise wrapper at most")
    kind, _, rest = text.partition(":")
    if kind == "random":
        if rest:
            raise ExpertError(f"{original!r}: 'random' takes no settings")
        return ExpertSpec("random", {}, eps)
    if kind != "stockfish":
        raise ExpertError(f"{original!r}: unknown expert {kind!r}; use stockfish[:settings], random or eps=P+SPEC")
    settings: dict[str, int] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in _STOCKFISH_SETTINGS:
            raise ExpertError(f"{original!r}: unknown setting {item!r}; use {', '.join(_STOCKFISH_SETTINGS)}")
        try:
            number = int(value)
        except ValueError:
            raise ExpertError(f"{original!r}: {key} must be a whole number") from None
        low, high = _STOCKFISH_SETTINGS[key]
        if not low <= number <= high:
            raise ExpertError(f"{original!r}: {key} must be from {low} to {high}")
        settings[key] = number
    return ExpertSpec("stockfish", settings, eps)


class Expert(Protocol):
    name: str

    def choose(self, board: chess.Board) -> chess.Move: ...

    def new_game(self, seed: int) -> None: ...

    def close(self) -> None: ...


@dataclass
class RandomExpert:
    rng: random.Random
    name: str = "random"

    def choose(self, board: chess.Board) -> chess.Move:
        return self.rng.choice(list(board.legal_moves))

    def new_game(self, seed: int) -> None:
        """Replay the same choices in a game started with the same seed."""
        self.rng.seed(seed)

    def close(self) -> None:
        pass


class UciPipe:
    """The few UCI commands an expert needs, written to and read from an engine's pipes directly.

    Synth games are Stockfish searches of a few hundred nodes, and python-chess's engine client costs
    about 0.5 ms a move in thread hand-offs and parsing, as much as the search itself; tournaments,
    which need clocks and time-outs, keep using python-chess.
    """

    def __init__(self, path: str, options: dict[str, int], setpgrp: bool = False) -> None:
        try:
            self.process = subprocess.Popen([path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=subprocess.DEVNULL, text=True, bufsize=1,
                                            start_new_session=setpgrp)
        except OSError as exc:
            raise ExpertError(f"cannot start Stockfish at {path}: {exc.strerror or exc}") from None
        self.path = path
        watchdog = threading.Timer(HANDSHAKE_TIMEOUT_S, self.process.kill)  # a program that is no UCI engine
        watchdog.start()
        try:
            self.send("uci")
            self.read_until("uciok")
            for name, value in options.items():
                self.send(f"setoption name {name} value {value}")
            self.sync()
        except ExpertCrashed as exc:
            self.close()
            raise ExpertError(f"cannot start Stockfish at {path}: not a UCI engine ({exc})") from None
        finally:
            watchdog.cancel()

    def send(self, line: str) -> None:
        try:
            self.process.stdin.write(line + "\n")
        except (BrokenPipeError, ValueError):
            raise ExpertCrashed(f"{self.path} exited") from None

    def read_until(self, prefix: str) -> str:
        """The first line starting with ``prefix``; what comes before it (info lines) is skipped."""
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise ExpertCrashed(f"{self.path} exited (code {self.process.poll()})")
            if line.startswith(prefix):
                return line

    def sync(self) -> None:
        self.send("isready")
        self.read_until("readyok")

    def close(self) -> None:
        try:
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            self.process.wait(timeout=2)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


@dataclass
class StockfishExpert:
    engine: UciPipe
    go: str
    """The ``go`` line of every search (``go_command`` of the spec's limit)."""
    name: str

    def choose(self, board: chess.Board) -> chess.Move:
        root = board.root()
        start = "startpos" if root.fen() == chess.STARTING_FEN else f"fen {root.fen()}"
        moves = " ".join(move.uci() for move in board.move_stack)
        self.engine.send(f"position {start} moves {moves}" if moves else f"position {start}")
        self.engine.send(self.go)
        reply = self.engine.read_until("bestmove").split()
        try:
            return parse_uci_move(board, reply[1])
        except (IndexError, ValueError):
            raise ExpertError(f"{self.name} answered {' '.join(reply)!r} in {board.fen()}") from None

    def new_game(self, seed: int) -> None:
        """``ucinewgame``: a cleared hash makes node- or depth-limited searches repeat exactly (skill
        levels and movetime still vary from run to run)."""
        self.engine.send("ucinewgame")
        self.engine.sync()

    def close(self) -> None:
        self.engine.close()


@dataclass
class NoisyExpert:
    eps: float
    inner: Expert
    rng: random.Random
    name: str

    def choose(self, board: chess.Board) -> chess.Move:
        if self.rng.random() < self.eps:
            return self.rng.choice(list(board.legal_moves))
        return self.inner.choose(board)

    def new_game(self, seed: int) -> None:
        self.inner.new_game(seed)
        self.rng.seed(seed)

    def close(self) -> None:
        self.inner.close()


def stockfish_options(settings: dict[str, int]) -> dict[str, int]:
    """The UCI options of every Stockfish this project starts (experts, tournament levels, the
    cutechess-cli and fastchess commands): its skill level (20, full strength, by default), one thread."""
    return {"Skill Level": settings.get("skill", 20), "Threads": 1}


def stockfish_limit(settings: dict[str, int]) -> chess.engine.Limit:
    if not any(k in settings for k in ("depth", "nodes", "movetime")):
        return chess.engine.Limit(time=DEFAULT_MOVETIME_MS / 1000)
    movetime = settings.get("movetime")
    return chess.engine.Limit(
        depth=settings.get("depth"), nodes=settings.get("nodes"), time=movetime / 1000 if movetime else None
    )


def go_command(limit: chess.engine.Limit) -> str:
    """The ``go`` line of a fixed search limit (depth, nodes, time per move)."""
    parts = ["go"]
    if limit.depth is not None:
        parts += ["depth", str(limit.depth)]
    if limit.nodes is not None:
        parts += ["nodes", str(limit.nodes)]
    if limit.time is not None:
        parts += ["movetime", str(round(limit.time * 1000))]
    return " ".join(parts)


def open_expert(
    spec: ExpertSpec | str, stockfish: str | None = None, seed: int | None = None, setpgrp: bool = False
) -> Expert:
    """Start the expert a spec describes (Stockfish processes run single-threaded).

    ``setpgrp`` starts Stockfish in its own process group, so Ctrl-C in the terminal does not kill it
    under a caller that handles the interruption itself.
    """
    if isinstance(spec, str):
        spec = parse_expert_spec(spec)
    rng = random.Random(seed)
    base: Expert
    if spec.kind == "random":
        base = RandomExpert(rng)
    else:
        engine = UciPipe(find_stockfish(stockfish), stockfish_options(spec.settings), setpgrp=setpgrp)
        base_name = str(ExpertSpec(spec.kind, spec.settings))
        base = StockfishExpert(engine, go_command(stockfish_limit(spec.settings)), base_name)
    if spec.eps:
        return NoisyExpert(spec.eps, base, rng, str(spec))
    return base
