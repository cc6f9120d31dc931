"""The players of one game slot: the model's engine and the opponents, started when first needed.

``--concurrency N`` runs N game slots, each owning its own engine processes (one per model, one per
opponent, reused with ``ucinewgame``). Engines run in their own process group, so Ctrl-C stops the
tournament without killing them mid-game.
"""

from __future__ import annotations

import sys

import chess
import chess.engine

from ..experts import (ExpertError, ExpertSpec, find_stockfish, open_expert, parse_expert_spec, stockfish_limit,
                       stockfish_options)
from .config import GauntletConfig, Opponent, OpponentKind, TournamentError
from .match import EnginePlayer, ExpertPlayer, Player

MODEL_ENGINE = (sys.executable, "-m", "transcend.uci")
"""How the model is played: the ``transcend-uci`` engine of this very installation."""


def _start_engine(command: list[str], what: str) -> chess.engine.SimpleEngine:
    """Start a UCI engine and wait until it is ready (a model loads in the background, and its loading
    time must not be charged to its clock in the first game)."""
    try:
        engine = chess.engine.SimpleEngine.popen_uci(command, setpgrp=True)
    except (OSError, chess.engine.EngineError, TimeoutError) as exc:
        raise TournamentError(f"cannot start {what} ({' '.join(command)}): {exc}") from None
    try:
        engine.ping()
    except (chess.engine.EngineError, TimeoutError) as exc:
        engine.close()
        raise TournamentError(f"{what} ({' '.join(command)}) did not get ready: {exc}") from None
    return engine


class GameSlot:
    """The engine processes of one game slot, started when first needed."""

    def __init__(self, config: GauntletConfig, slot: int, threads: int, value_heads: dict[str, bool]) -> None:
        self.config = config
        self.slot = slot
        self.threads = threads
        self.value_heads = value_heads
        self.players: dict[tuple[str, int], Player] = {}

    def model_player(self, m: int) -> EnginePlayer:
        key = ("model", m)
        if key not in self.players:
            model = self.config.models[m]
            command = [*MODEL_ENGINE, "--model", model.path, "--seed", str(self.config.seed + self.slot)]
            engine = _start_engine(command, f"the model engine for {model.name}")
            options = engine.options
            if self.config.sampling and "Sampling" not in options:
                engine.close()
                raise TournamentError("--sampling: this transcend-uci has no Sampling option")
            if "Threads" in options and self.threads:
                engine.configure({"Threads": self.threads})
            # The model does not search: one evaluation a move whatever the limit. Under --movetime or
            # --nodes it gets none (a bare "go"), as in the paper, where only Stockfish was timed, so
            # that a slow machine never makes its time manager answer with an emergency random move.
            unlimited = None if self.config.rules.limit.clock is not None else chess.engine.Limit()
            self.players[key] = EnginePlayer(engine, model.name, fixed_limit=unlimited,
                                             reports_scores=self.value_heads[model.path])
        return self.players[key]  # type: ignore[return-value]

    def opponent_player(self, o: int, seed: int) -> Player:
        opponent = self.config.opponents[o]
        key = ("opponent", o)
        if key not in self.players:
            self.players[key] = self._open_opponent(opponent, seed)
        player = self.players[key]
        if isinstance(player, ExpertPlayer):
            player.expert.new_game(seed)  # a replayed game (on --resume) replays the same choices
        return player

    def _open_opponent(self, opponent: Opponent, seed: int) -> Player:
        if opponent.kind is OpponentKind.UCI:
            return EnginePlayer(_start_engine([opponent.spec], opponent.name), opponent.name)
        if opponent.kind is OpponentKind.LEVEL:
            spec = ExpertSpec("stockfish", {"skill": int(opponent.spec)})
        else:
            spec = parse_expert_spec(opponent.spec)
        if spec.kind == "stockfish" and not spec.eps:  # a UCI engine with a clock, through python-chess
            try:
                path = find_stockfish(self.config.stockfish)
            except ExpertError as exc:
                raise TournamentError(str(exc)) from None
            engine = _start_engine([path], opponent.name)
            engine.configure(stockfish_options(spec.settings))
            fixed = None if opponent.kind is OpponentKind.LEVEL else stockfish_limit(spec.settings)
            return EnginePlayer(engine, opponent.name, fixed_limit=fixed)
        try:
            expert = open_expert(spec, self.config.stockfish, seed=seed, setpgrp=True)
        except ExpertError as exc:
            raise TournamentError(f"cannot start {opponent.name}: {exc}") from None
        return ExpertPlayer(expert, opponent.name)

    def drop(self, player: Player) -> None:
        """Close a player after a crash or a hang; the next game starts a fresh process."""
        for key, p in list(self.players.items()):
            if p is player:
                del self.players[key]
        player.close()

    def close(self) -> None:
        for player in self.players.values():
            player.close()
        self.players.clear()


def opponent_options(opponent: Opponent) -> str:
    if opponent.kind is OpponentKind.LEVEL:
        options = stockfish_options({"skill": int(opponent.spec)})
        return " ".join(f"{name}={value}" for name, value in options.items())
    return opponent.spec


def model_options(config: GauntletConfig, temperature: float, seed: int) -> dict[str, str]:
    options = {"Temperature": f"{temperature:g}", "Seed": str(seed)}
    if config.sampling:
        options["Sampling"] = config.sampling
    return options
