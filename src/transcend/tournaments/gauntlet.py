"""Gauntlets: our model at each temperature against a list of opponents, played, journaled, resumable.

The schedule is fixed by the configuration alone: for each model, temperature and opponent, games
``0 .. N-1``; the model has White in even games. Games ``2k`` and ``2k+1`` start from the same opening
(book line ``k`` and/or random plies seeded by ``k``), and each game's engine seed is a function of its
index, so a resumed tournament plays exactly the games an uninterrupted one would have played.

``--concurrency N`` runs N game slots, each a thread that owns its own engine processes (one per
model, one per opponent, started on first use and reused with ``ucinewgame``). Engines run in their
own process group, so Ctrl-C stops the tournament without killing them mid-game; a game cut short by
an interruption is not recorded and is played again on ``--resume``.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import queue
import shutil
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import chess
import chess.engine
import chess.pgn

from ..errors import TranscendError
from ..experts import (ExpertError, ExpertSpec, find_stockfish, open_expert, parse_expert_spec, stockfish_limit,
                       stockfish_options)
from ..files import write_text
from .books import load_book, opening_for
from .journal import Journal
from .match import (
    CRASH,
    MATE_SCORE_CP,
    TIME_LOSS,
    DrawRule,
    EnginePlayer,
    ExpertPlayer,
    GameRecord,
    GameRules,
    MoveLimit,
    Player,
    ResignRule,
    TimeControl,
    play_game,
)

CONFIG_FILE = "tournament.json"
CONFIG_VERSION = 1
PAPER_TEMPERATURES = (0.001, 0.01, 0.1, 0.3, 0.5, 0.75, 1.0, 1.5)
PAPER_LEVELS = (1, 3, 5)
PAPER_GAMES = 100
PAPER_MOVETIME_MS = 100
PAPER_MAX_MOVES = 90
MODEL_ENGINE = (sys.executable, "-m", "transcend.uci")
"""How the model is played: the ``transcend-uci`` engine of this very installation."""


class TournamentError(TranscendError):
    """A tournament that cannot be set up or continued."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: str


@dataclass(frozen=True)
class Opponent:
    """``level``: Stockfish at a skill level under the gauntlet's time control; ``expert``: an expert
    spec (docs/formats.md) with its own limits; ``uci``: any UCI engine under the gauntlet's limits."""

    name: str
    kind: str
    spec: str
    elo: float | None = None


def level_opponent(level: int, anchors: dict[int, float]) -> Opponent:
    if not 0 <= level <= 20:
        raise TournamentError(f"--stockfish-levels: {level} is not a skill level (0..20)")
    return Opponent(f"stockfish level {level}", "level", str(level), anchors.get(level))


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
        return Opponent(spec, "uci", os.path.abspath(resolved), elo)
    return Opponent(str(parse_expert_spec(spec)), "expert", str(parse_expert_spec(spec)), elo)


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
                    "opponents": tuple(Opponent(**o) for o in data["opponents"]),
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


# -- engines of one game slot -------------------------------------------------------------------


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


class _Slot:
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
        if opponent.kind == "uci":
            return EnginePlayer(_start_engine([opponent.spec], opponent.name), opponent.name)
        if opponent.kind == "level":
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
            fixed = None if opponent.kind == "level" else stockfish_limit(spec.settings)
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
    if opponent.kind == "level":
        options = stockfish_options({"skill": int(opponent.spec)})
        return " ".join(f"{name}={value}" for name, value in options.items())
    return opponent.spec


def model_options(config: GauntletConfig, temperature: float, seed: int) -> dict[str, str]:
    options = {"Temperature": f"{temperature:g}", "Seed": str(seed)}
    if config.sampling:
        options["Sampling"] = config.sampling
    return options


def play_scheduled(
    config: GauntletConfig,
    slot: _Slot,
    game: ScheduledGame,
    book: list[chess.Board] | None,
    should_stop: Callable[[], bool],
) -> dict | None:
    """Play one scheduled game in ``slot``; the journal record, or None when stopped early."""
    seed = game_seed(config, game.index)
    options = model_options(config, game.temperature, seed)
    model = slot.model_player(game.model)
    try:
        model.engine.configure({k: v for k, v in options.items() if k in model.engine.options})
    except chess.engine.EngineTerminatedError:  # it died between games: a fresh one plays this game
        slot.drop(model)
        model = slot.model_player(game.model)
        model.engine.configure({k: v for k, v in options.items() if k in model.engine.options})
    opponent = slot.opponent_player(game.opponent, seed)
    start = opening_for(game.pair, book, config.random_plies, config.seed)
    white, black = (model, opponent) if game.model_white else (opponent, model)
    record = play_game(white, black, start, config.rules, game_key=("game", game.index), should_stop=should_stop)
    if record is None:
        return None
    if record.fault and record.fault["kind"] in (CRASH, TIME_LOSS):
        slot.drop(white if record.fault["side"] == "white" else black)
    return journal_record(config, game, start, record, seed)


def journal_record(config: GauntletConfig, game: ScheduledGame, start: chess.Board, record: GameRecord,
                   seed: int) -> dict:
    model = config.models[game.model]
    opponent = config.opponents[game.opponent]
    score = {"1-0": 1.0, "0-1": 0.0}.get(record.result, 0.5)
    model_score = score if game.model_white else 1.0 - score
    fault = record.fault
    if fault is not None:
        fault = {**fault, "player": "model" if (fault["side"] == "white") == game.model_white else "opponent"}
    model_first = (start.turn == chess.WHITE) == game.model_white
    model_random = sum((ply % 2 == 0) == model_first for ply in record.random_plies)
    entry = {
        "index": game.index,
        "model": model.name,
        "model_path": model.path,
        "temperature": game.temperature,
        "opponent": opponent.name,
        "round": game.round,
        "model_color": "white" if game.model_white else "black",
        "result": record.result,
        "model_score": model_score,
        "termination": record.termination,
        "reason": record.reason,
        "fault": fault,
        "random_moves": {"model": model_random, "opponent": len(record.random_plies) - model_random},
        "seed": seed,
        "start_fen": start.root().fen(),
        "opening": [m.uci() for m in start.move_stack],
        "moves": record.moves,
        "scores": record.scores,
        "times_ms": record.times_ms,
        "date": datetime.date.today().strftime("%Y.%m.%d"),
    }
    entry["pgn"] = game_pgn(config, game, start, record, entry)
    return entry


def game_pgn(config: GauntletConfig, game: ScheduledGame, start: chess.Board, record: GameRecord,
             entry: dict) -> str:
    model = config.models[game.model]
    opponent = config.opponents[game.opponent]
    board = start.copy()
    for uci in record.moves:
        board.push_uci(uci)
    pgn = chess.pgn.Game.from_board(board)
    model_name = model_player_name(model, game.temperature)
    white, black = (model_name, opponent.name) if game.model_white else (opponent.name, model_name)
    headers = pgn.headers
    headers["Event"] = "transcend tournament"
    headers["Site"] = "?"
    headers["Date"] = entry["date"]
    headers["Round"] = str(game.round + 1)
    headers["White"], headers["Black"] = white, black
    headers["Result"] = record.result
    if opponent.elo is not None:
        headers["BlackElo" if game.model_white else "WhiteElo"] = f"{opponent.elo:g}"
    headers["Termination"] = record.termination
    headers["Reason"] = record.reason + (f": {record.fault['detail']}" if record.fault else "")
    headers["Model"] = model.path
    headers["Temperature"] = f"{game.temperature:g}"
    headers["ModelOptions"] = " ".join(f"{k}={v}" for k, v in model_options(config, game.temperature,
                                                                              entry["seed"]).items())
    headers["Opponent"] = opponent.name
    headers["OpponentOptions"] = opponent_options(opponent)
    headers["Limit"] = config.rules.limit.describe()
    if config.rules.max_moves is not None:
        headers["MoveCap"] = str(config.rules.max_moves)
    headers["GameIndex"] = str(game.index)
    if start.move_stack:
        headers["OpeningPlies"] = str(len(start.move_stack))
    node = pgn
    for _ in start.move_stack:
        node = node.variations[0]
    random_plies = set(record.random_plies)
    for ply, (score, ms) in enumerate(zip(record.scores, record.times_ms)):
        node = node.variations[0]
        node.comment = (_score_text_pgn(score) + "/" if score is not None else "") + f"{ms / 1000:.3f}s"
        if ply in random_plies:
            node.comment += " random move: no time for the model"
    exporter = chess.pgn.StringExporter(headers=True, variations=False, comments=True)
    return pgn.accept(exporter) + "\n\n"


def _score_text_pgn(white_cp: int) -> str:
    """An evaluation as cutechess writes it: +0.35 in pawns, or +M3 / -M2 for mates (plies to mate)."""
    if abs(white_cp) > MATE_SCORE_CP - 1000:
        return ("+" if white_cp > 0 else "-") + f"M{MATE_SCORE_CP - abs(white_cp)}"
    return f"{white_cp / 100:+.2f}"


# -- the tournament -----------------------------------------------------------------------------


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


def check_models(config: GauntletConfig) -> dict[str, bool]:
    """Load each model once here, so a bad file is a clear error rather than a crashed engine.

    Returns whether each model has a value head: only then do its reported scores mean something.
    """
    from ..inference.runtime import OnnxModel

    return {m.path: OnnxModel(m.path, provider="cpu").info.has_value_head for m in config.models}


@dataclass
class Progress:
    played: int = 0
    score: float = 0.0


def run_gauntlet(
    config: GauntletConfig,
    out_dir: Path,
    *,
    concurrency: int = 1,
    resume: bool = False,
    progress: bool = True,
) -> list[dict]:
    """Play every scheduled game not yet in the journal; returns all records, in schedule order.

    Without ``resume``, ``out_dir`` must not hold games already. With it, the saved configuration must
    equal ``config``. Interrupted (KeyboardInterrupt), it stops the slots, keeps every finished game
    and re-raises.
    """
    from tqdm import tqdm

    if concurrency < 1:
        raise TournamentError("--concurrency must be at least 1")
    out_dir.mkdir(parents=True, exist_ok=True)
    journal = Journal(out_dir)
    records = journal.load()
    saved = load_config(out_dir)
    if resume and saved is not None:
        diffs = config_differences(saved, config)
        if diffs:
            raise TournamentError(f"{out_dir} was started with other settings ({'; '.join(diffs)}); "
                                  "repeat the original options or use a new --out")
    elif records:
        raise TournamentError(f"{out_dir} already holds {len(records)} games: add --resume to continue, "
                              "or choose a new --out")
    save_config(out_dir, config)

    games = schedule(config)
    done = {r["index"] for r in records}
    if any(r["index"] >= len(games) for r in records):
        raise TournamentError(f"{journal.records_path}: holds games this schedule does not have")
    pending = [g for g in games if g.index not in done]
    book = load_book(config.book) if config.book else None
    value_heads = check_models(config) if pending else {}

    tally = Progress(len(records), sum(r["model_score"] for r in records))
    bar = tqdm(total=len(games), initial=len(records), unit="game", desc="tournament", dynamic_ncols=True,
               disable=None if progress else True)
    bar.set_postfix_str(_score_text(tally))
    journal.open(records)
    work: queue.Queue[ScheduledGame] = queue.Queue()
    for game in pending:
        work.put(game)
    results: queue.Queue[tuple[str, object]] = queue.Queue()
    stop = threading.Event()
    slots = min(concurrency, len(pending))
    threads_each = max(1, (os.cpu_count() or 1) // max(slots, 1)) if slots > 1 else 0

    def worker(n: int) -> None:
        slot = _Slot(config, n, threads_each, value_heads)
        try:
            while not stop.is_set():
                try:
                    game = work.get_nowait()
                except queue.Empty:
                    break
                record = play_scheduled(config, slot, game, book, stop.is_set)
                if record is not None:
                    results.put(("game", record))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which re-raises it
            results.put(("error", exc))
        finally:
            slot.close()
            results.put(("done", n))

    workers = [threading.Thread(target=worker, args=(n,), name=f"game-slot-{n}") for n in range(slots)]
    for w in workers:
        w.start()
    running = len(workers)
    error: BaseException | None = None
    try:
        while running:
            try:
                kind, payload = results.get(timeout=0.25)
            except queue.Empty:
                continue
            if kind == "done":
                running -= 1
            elif kind == "error":
                error = error or payload  # type: ignore[assignment]
                stop.set()
            else:
                record = payload  # type: ignore[assignment]
                journal.append(record)
                records.append(record)
                tally.played += 1
                tally.score += record["model_score"]
                bar.update(1)
                bar.set_postfix_str(_score_text(tally))
    except BaseException:
        stop.set()
        for w in workers:
            w.join()
        while not results.empty():  # games that finished while we were stopping still count
            kind, payload = results.get()
            if kind == "game":
                journal.append(payload)  # type: ignore[arg-type]
                records.append(payload)  # type: ignore[arg-type]
        raise
    finally:
        bar.close()
        journal.close()
    if error is not None:
        raise error
    return sorted(records, key=lambda r: r["index"])


def _score_text(tally: Progress) -> str:
    if not tally.played:
        return "model score -"
    return f"model score {tally.score:g}/{tally.played} ({100 * tally.score / tally.played:.1f}%)"
