"""Playing a tournament: every scheduled game not yet in the journal, resumable.

Games run on a pool of ``--concurrency`` threads, each with its own game slot (``players.GameSlot``:
the engine processes it reuses from game to game). Each finished game is journaled by the calling
thread at once; a game cut short by an interruption is not recorded and is played again on
``--resume``.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import chess
import chess.engine

from .books import load_book, opening_for
from .config import GauntletConfig, ScheduledGame, TournamentError, config_differences, game_seed, load_config, \
    save_config, schedule
from .journal import Journal
from .match import CRASH, TIME_LOSS, play_game
from .players import GameSlot, model_options
from .records import GameEntry, game_entry


def play_scheduled(
    config: GauntletConfig,
    slot: GameSlot,
    game: ScheduledGame,
    book: list[chess.Board] | None,
    should_stop: Callable[[], bool],
) -> GameEntry | None:
    """Play one scheduled game in ``slot``; its journal entry, or None when stopped early."""
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
    return game_entry(config, game, start, record, seed)


def check_models(config: GauntletConfig) -> dict[str, bool]:
    """Load each model once here, so a bad file is a clear error rather than a crashed engine.

    Returns whether each model has a value head: only then do its reported scores mean something.
    """
    from ..inference.runtime import OnnxModel

    return {m.path: OnnxModel(m.path, provider="cpu").info.has_value_head for m in config.models}


class _ThreadSlots:
    """One game slot per pool thread, numbered in the order the threads first ask for one."""

    def __init__(self, make: Callable[[int], GameSlot]) -> None:
        self._make = make
        self._local = threading.local()
        self._lock = threading.Lock()
        self._slots: list[GameSlot] = []

    def mine(self) -> GameSlot:
        slot = getattr(self._local, "slot", None)
        if slot is None:
            with self._lock:
                slot = self._make(len(self._slots))
                self._slots.append(slot)
            self._local.slot = slot
        return slot

    def close(self) -> None:
        for slot in self._slots:
            slot.close()


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
) -> list[GameEntry]:
    """Play every scheduled game not yet in the journal; returns all entries, in schedule order.

    Without ``resume``, ``out_dir`` must not hold games already. With it, the saved configuration must
    equal ``config``. Interrupted (KeyboardInterrupt), it stops the games, keeps every finished one and
    re-raises; a failing game slot stops the others the same way, and its error is raised.
    """
    from tqdm import tqdm

    if concurrency < 1:
        raise TournamentError("--concurrency must be at least 1")
    out_dir.mkdir(parents=True, exist_ok=True)
    journal = Journal(out_dir)
    entries = journal.load()
    saved = load_config(out_dir)
    if resume and saved is not None:
        diffs = config_differences(saved, config)
        if diffs:
            raise TournamentError(f"{out_dir} was started with other settings ({'; '.join(diffs)}); "
                                  "repeat the original options or use a new --out")
    elif entries:
        raise TournamentError(f"{out_dir} already holds {len(entries)} games: add --resume to continue, "
                              "or choose a new --out")
    save_config(out_dir, config)

    games = schedule(config)
    done = {e.index for e in entries}
    if any(e.index >= len(games) for e in entries):
        raise TournamentError(f"{journal.records_path}: holds games this schedule does not have")
    pending = [g for g in games if g.index not in done]
    book = load_book(config.book) if config.book else None
    value_heads = check_models(config) if pending else {}

    tally = Progress(len(entries), sum(e.model_score for e in entries))
    bar = tqdm(total=len(games), initial=len(entries), unit="game", desc="tournament", dynamic_ncols=True,
               disable=None if progress else True)
    bar.set_postfix_str(_score_text(tally))
    journal.open(entries)
    stop = threading.Event()
    workers = min(concurrency, len(pending))
    threads_each = max(1, (os.cpu_count() or 1) // max(workers, 1)) if workers > 1 else 0
    slots = _ThreadSlots(lambda n: GameSlot(config, n, threads_each, value_heads))

    def keep(entry: GameEntry | None) -> None:
        if entry is None:  # stopped before its end
            return
        journal.append(entry)
        entries.append(entry)
        tally.played += 1
        tally.score += entry.model_score
        bar.update(1)
        bar.set_postfix_str(_score_text(tally))

    error: BaseException | None = None
    futures: list[concurrent.futures.Future] = []
    handled: set[concurrent.futures.Future] = set()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix="game-slot")
    try:
        futures = [pool.submit(lambda g=game: play_scheduled(config, slots.mine(), g, book, stop.is_set))
                   for game in pending]
        running = set(futures)
        while running:
            finished, running = concurrent.futures.wait(running, timeout=0.25,
                                                        return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
                handled.add(future)
                if future.cancelled():
                    continue
                if future.exception() is not None:  # a slot failed: stop the others, raise it at the end
                    error = error or future.exception()
                    stop.set()
                    for other in running:
                        other.cancel()
                    continue
                keep(future.result())
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for future in futures:  # games that finished while we were stopping still count
            if future not in handled and future.done() and not future.cancelled() and future.exception() is None:
                keep(future.result())
        slots.close()
        bar.close()
        journal.close()
    if error is not None:
        raise error
    return sorted(entries, key=lambda e: e.index)


def _score_text(tally: Progress) -> str:
    if not tally.played:
        return "model score -"
    return f"model score {tally.score:g}/{tally.played} ({100 * tally.score / tally.played:.1f}%)"
