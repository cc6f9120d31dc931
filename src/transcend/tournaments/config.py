"""A tournament's configuration and its schedule, and the ``tournament.json`` that keeps them.

The schedule is fixed by the configuration alone: for each model, temperature and opponent, games
``0 .. N-1``; the model has White in even games. Games ``2k`` and ``2k+1`` start from the same opening
(book line ``k`` and/or random plies seeded by ``k``), and each game's engine seed is a function of its
index, so a resumed tournament plays exactly the games an uninterrupted one would have played.
"""

from __future__ import annotations

import enum
import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import TranscendError
from ..experts import parse_expert_spec
from ..files import write_text
from .match import DrawRule, GameRules, MoveLimit, ResignRule, TimeControl

CONFIG_FILE = "tournament.json"
CONFIG_VERSION = 1
PAPER_TEMPERATURES = (0.001, 0.01, 0.1, 0.3, 0.5, 0.75, 1.0, 1.5)
PAPER_LEVELS = (1, 3, 5)
PAPER_GAMES = 100
PAPER_MOVETIME_MS = 100
PAPER_MAX_MOVES = 90


class TournamentError(TranscendError):
    """A tournament that cannot be set up or continued."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: str


class OpponentKind(str, enum.Enum):
    """What an opponent is; its value is how ``tournament.json`` writes it."""

    LEVEL = "level"
    """Stockfish at a skill level (``spec``) under the gauntlet's time control."""
    EXPERT = "expert"
    """An expert spec (docs/formats.md) with its own limits."""
    UCI = "uci"
    """Any UCI engine (``spec``: its path) under the gauntlet's limits."""


@dataclass(frozen=True)
class Opponent:
    name: str
    kind: OpponentKind
    spec: str
    elo: float | None = None


def level_opponent(level: int, anchors: dict[int, float]) -> Opponent:
    if not 0 <= level <= 20:
        raise TournamentError(f"--stockfish-levels: {level} is not a skill level (0..20)")
    return Opponent(f"stockfish level {level}", OpponentKind.LEVEL, str(level), anchors.get(level))


def parse_opponent(text: str) -> Opponent:
    """``SPEC[@ELO]``: an expert spec (``stockfish:skill=3``, ``random``, ``eps=0.2+...``) or
    ``uci:PATH`` for any UCI engine; ``@ELO`` anchors it for the ratings."""
    spec, at, elo_text = text.strip().rpartition("@") if "@" in text else (text.strip(), "", "")
    elo = None
    if at:
        try:
            elo = float(elo_text)
        except ValueError:
            raise TournamentError(f"--opponent {text!r}: the rating after '@' must be a number") from None
        if not math.isfinite(elo):
            raise TournamentError(f"--opponent {text!r}: the rating must be finite")
    if spec.startswith("uci:"):
        path = spec[4:]
        resolved = shutil.which(path)
        if not path or not resolved:
            raise TournamentError(f"--opponent {text!r}: {path or '(empty)'} is not an executable engine")
        return Opponent(spec, OpponentKind.UCI, os.path.abspath(resolved), elo)
    return Opponent(str(parse_expert_spec(spec)), OpponentKind.EXPERT, str(parse_expert_spec(spec)), elo)


def model_entries(paths: list[Path]) -> list[ModelEntry]:
    """Models named by file stem, or by folder/stem where stems repeat."""
    resolved = [p.resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        raise TournamentError("--model: the same model is given twice")
    stems = [p.stem for p in resolved]
    names = [f"{p.parent.name}/{p.stem}" if stems.count(p.stem) > 1 else p.stem for p in resolved]
    if len(set(names)) != len(names):
        raise TournamentError("--model: two models have the same folder and file name; rename one")
    return [ModelEntry(n, str(p)) for n, p in zip(names, resolved)]


@dataclass(frozen=True)
class GauntletConfig:
    """Everything that decides which games are played and how (not how many run at once)."""

    models: tuple[ModelEntry, ...]
    temperatures: tuple[float, ...]
    opponents: tuple[Opponent, ...]
    games: int
    rules: GameRules
    book: str | None = None
    random_plies: int = 0
    sampling: str | None = None
    seed: int = 0
    stockfish: str | None = None
    protocol: str | None = None
    anchors: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.models:
            raise TournamentError("no model to play")
        if not self.temperatures:
            raise TournamentError("--temperatures: give at least one")
        for t in self.temperatures:
            if not (math.isfinite(t) and 0.0 <= t <= 100.0):
                raise TournamentError(f"--temperatures: {t} is not a temperature from 0 to 100")
        if len(set(self.temperatures)) != len(self.temperatures):
            raise TournamentError("--temperatures: a temperature is given twice")
        if not self.opponents:
            raise TournamentError("no opponents: give --stockfish-levels and/or --opponent")
        names = [o.name for o in self.opponents]
        if len(set(names)) != len(names):
            raise TournamentError("an opponent is given twice")
        if self.games < 1:
            raise TournamentError("--games must be at least 1")
        if self.random_plies < 0:
            raise TournamentError("--random-plies must not be negative")
        if self.sampling not in (None, "move", "token"):
            raise TournamentError("--sampling is move or token")

    def to_json(self) -> dict:
        data = asdict(self)
        data["anchors"] = {str(k): v for k, v in self.anchors.items()}
        return data

    @classmethod
    def from_json(cls, data: dict) -> GauntletConfig:
        try:
            rules = dict(data["rules"])
            limit = dict(rules["limit"])
            limit["clock"] = TimeControl(**limit["clock"]) if limit["clock"] else None
            rules["limit"] = MoveLimit(**limit)
            rules["draw"] = DrawRule(**rules["draw"]) if rules["draw"] else None
            rules["resign"] = ResignRule(**rules["resign"]) if rules["resign"] else None
            return cls(
                **{
                    **data,
                    "models": tuple(ModelEntry(**m) for m in data["models"]),
                    "temperatures": tuple(data["temperatures"]),
                    "opponents": tuple(Opponent(**{**o, "kind": OpponentKind(o["kind"])}) for o in data["opponents"]),
                    "rules": GameRules(**rules),
                    "anchors": {int(k): float(v) for k, v in data["anchors"].items()},
                }
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TournamentError(f"{CONFIG_FILE}: not a tournament configuration this version reads ({exc})") from None


@dataclass(frozen=True)
class ScheduledGame:
    index: int
    model: int
    temperature: float
    opponent: int
    round: int  # 0 .. games-1 within its pairing

    @property
    def model_white(self) -> bool:
        return self.round % 2 == 0

    @property
    def pair(self) -> int:
        return self.round // 2


def schedule(config: GauntletConfig) -> list[ScheduledGame]:
    games = []
    for m in range(len(config.models)):
        for t in config.temperatures:
            for o in range(len(config.opponents)):
                for r in range(config.games):
                    games.append(ScheduledGame(len(games), m, t, o, r))
    return games


def game_seed(config: GauntletConfig, index: int) -> int:
    """The engine seed of one game: fixed by the tournament seed and the game's place in the schedule."""
    return (config.seed * 1_000_003 + index) % (2**31 - 1)


def model_player_name(model: ModelEntry, temperature: float) -> str:
    return f"{model.name} T={temperature:g}"


def save_config(out_dir: Path, config: GauntletConfig) -> None:
    write_text(out_dir / CONFIG_FILE,
               json.dumps({"format_version": CONFIG_VERSION, "config": config.to_json()}, indent=2) + "\n")


def load_config(out_dir: Path) -> GauntletConfig | None:
    path = out_dir / CONFIG_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TournamentError(f"{path}: not readable JSON ({exc})") from None
    if data.get("format_version") != CONFIG_VERSION:
        raise TournamentError(f"{path}: written by another version (format {data.get('format_version')})")
    return GauntletConfig.from_json(data["config"])


def config_differences(saved: GauntletConfig, new: GauntletConfig) -> list[str]:
    a, b = saved.to_json(), new.to_json()
    return [f"{k}: was {a[k]!r}, now {b[k]!r}" for k in a if a[k] != b[k]]
