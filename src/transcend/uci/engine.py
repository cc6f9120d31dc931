"""The UCI engine behind ``transcend-uci``: its commands, and its searches on threads.

Threads. The main thread reads stdin (as bytes, decoded leniently) and answers at once, ``isready``
included while a search runs. Each ``go`` gets a controller thread that waits for the model's answer,
``stop``, ``ponderhit`` or the time limit, and writes exactly one ``bestmove``. The model runs on a think
thread (one evaluation at a time, under a lock), so an evaluation that overruns the time limit never
holds up the answer. A search's progress is one ``Phase``, which only moves forward. The ONNX session
is loaded in the background (``loader``) after ``uciok`` (and again when Model, Provider or Threads
change); ``isready`` waits for it. The process never imports torch.

Every malformed command is explained in an ``info string`` and leaves the engine in a sane state; a
closed stdout ends the process quietly.
"""

from __future__ import annotations

import enum
import random
import re
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import BinaryIO

import chess
import numpy as np

from ..inference.choice import Thought, predict_reply, think
from ..transcript import parse_uci_move
from .loader import Loaded, ModelLoader
from .options import Effect, OptionError, OptionSpec, Settings, find_option, shown
from .protocol import MAX_LINE_BYTES, RANDOM_MOVE_NOTE, Output, handshake, read_line
from .scores import score_text
from .timeman import GoParams, parse_go, time_limit

STOP_GRACE = 0.25
"""Seconds a stopped search waits for an evaluation already running before it answers without it."""
HISTORY_SHARE = 0.5
"""Share of a move's spare time (its limit less the model's expected cost) that the history search of a
FEN start may take, once per game; past it, the game is played from the fallback transcript."""


class Phase(enum.Enum):
    """Where a search stands. It only moves forward, and an answered search stays answered."""

    WAITING = "waiting"
    """For the model: its loading, the evaluation lock, the history search of a FEN start."""
    EVALUATING = "evaluating"
    """The model is choosing the move."""
    PREDICTING = "predicting"
    """The move is chosen; the reply to ponder on is being predicted (Ponder on)."""
    READY = "ready"
    """Everything the answer needs is known, or the search failed (``Search.failure``)."""
    ANSWERED = "answered"
    """``bestmove`` has been written."""


@dataclass(frozen=True)
class Command:
    """One input line's command: its arguments as words and as the text after the command word."""

    args: list[str]
    rest: str
    received: float
    """When the line was read (``time.perf_counter()``)."""


@dataclass(eq=False)
class Search:
    """One ``go``: the position and settings it was given, and what has happened to it since.

    ``stopped`` and ``ponderhit_at`` are what the GUI said; ``phase`` is how far the search got.
    """

    board: chess.Board
    go: GoParams
    settings: Settings
    searchmoves: list[chess.Move] | None
    received: float
    limit: float | None
    cond: threading.Condition = field(default_factory=threading.Condition)
    phase: Phase = Phase.WAITING
    stopped: bool = False
    ponderhit_at: float | None = None
    thought: Thought | None = None
    ponder_move: chess.Move | None = None
    failure: str | None = None
    loaded: Loaded | None = None
    controller: threading.Thread | None = None

    @property
    def answered(self) -> bool:
        return self.phase is Phase.ANSWERED

    def advance(self, phase: Phase) -> None:
        """Move on to ``phase`` and wake the controller; an answered search keeps its phase."""
        with self.cond:
            if self.phase is not Phase.ANSWERED:
                self.phase = phase
            self.cond.notify_all()

    def waiting(self) -> bool:
        """Whether it must wait for ``stop`` (infinite) or ``ponderhit`` (ponder) before answering."""
        return self.go.infinite or (self.go.ponder and self.ponderhit_at is None)

    def remaining(self) -> float | None:
        """Seconds left before the time limit; None while waiting or when there is no limit."""
        if self.limit is None or self.waiting():
            return None
        start = self.ponderhit_at if self.ponderhit_at is not None else self.received
        return start + self.limit - time.perf_counter()


class UciEngine:
    """The engine's state between commands, and the handling of each command (``COMMANDS``)."""

    def __init__(self, settings: Settings, output: Output) -> None:
        self.settings = settings
        self.output = output
        self.board = chess.Board()
        self.debug = False
        self.loader = ModelLoader()
        self.search: Search | None = None
        self._policy_lock = threading.Lock()
        self._new_game = False
        self._seed_generators()

    # -- output ---------------------------------------------------------------------------------------
    def send(self, line: str) -> None:
        self.output.send(line)

    def info_string(self, text: str) -> None:
        text = "".join(ch if ch.isprintable() else " " for ch in text).encode("ascii", "replace").decode()
        self.send("info string " + " ".join(text.split())[:1000])

    def _seed_generators(self) -> None:
        seed = self.settings.seed if self.settings.seed >= 0 else None
        self.rng = np.random.default_rng(seed)
        self.fallback_rng = random.Random(seed)

    # -- input ----------------------------------------------------------------------------------------
    def run(self, stream: BinaryIO, first: bytes | None = None) -> None:
        """Handle ``first`` (a line already read), then read and handle commands until ``quit`` or the
        end of input."""
        raw = first if first is not None else read_line(stream)
        while raw is not None:
            if not self.feed(raw, time.perf_counter()):
                self.shutdown(stop=True)
                return
            raw = read_line(stream)
        self.shutdown(stop=False)

    def start_loading(self) -> None:
        """Load the model for the current settings in the background (``isready`` and ``go`` wait for it)."""
        self.loader.request(self.settings)

    def feed(self, raw: bytes, received: float) -> bool:
        """Handle one line as read by ``read_line``; False means quit."""
        if len(raw.rstrip(b"\r\n")) > MAX_LINE_BYTES:
            self.info_string(f"ignored a line longer than {MAX_LINE_BYTES} bytes")
            return True
        return self.handle(raw.decode("utf-8", errors="replace"), received)

    def handle(self, line: str, received: float) -> bool:
        """Handle one input line read at ``received`` (``time.perf_counter()``); False means quit."""
        self.output.log_input(line)
        try:
            return self._dispatch(line, received)
        except Exception as exc:  # a bug must cost one command, not the game
            self.output.log_note(traceback.format_exc())
            self.info_string(f"internal error on this command ({type(exc).__name__}: {exc}); the engine goes on")
            return True

    def _dispatch(self, line: str, received: float) -> bool:
        words = list(re.finditer(r"\S+", line))
        if not words:
            self.info_string("empty line ignored")
            return True
        for index, word in enumerate(words):
            name = word.group().lower()
            if name in self.COMMANDS:
                break
        else:
            self.info_string(f"unknown command {shown(words[0].group())}; commands: {', '.join(self.COMMANDS)}")
            return True
        if index:
            skipped = " ".join(w.group() for w in words[:index])
            self.info_string(f"ignored unknown token(s) {shown(skipped)} before '{name}'")
        command = Command([w.group() for w in words[index + 1 :]], line[word.end() :].strip(), received)
        self.COMMANDS[name](self, command)
        return name != "quit"

    # -- commands -------------------------------------------------------------------------------------
    def cmd_uci(self, command: Command) -> None:
        for line in handshake(self.settings):
            self.send(line)
        self.start_loading()

    def cmd_debug(self, command: Command) -> None:
        args = command.args
        if len(args) == 1 and args[0].lower() in ("on", "off"):
            self.debug = args[0].lower() == "on"
        else:
            self.info_string("debug takes 'on' or 'off'")

    def cmd_isready(self, command: Command) -> None:
        self.start_loading()
        loaded = self.loader.wait()
        if loaded.error:
            self._report_load_error(loaded)
        self.send("readyok")

    def cmd_register(self, command: Command) -> None:
        self.info_string("no registration is needed")

    def cmd_ucinewgame(self, command: Command) -> None:
        self.board = chess.Board()
        self._new_game = True

    def cmd_stop(self, command: Command) -> None:
        self._stop()

    def cmd_quit(self, command: Command) -> None:
        """Nothing to do here: the caller stops reading and shuts the engine down (``run``)."""

    def _stop(self) -> None:
        search = self.search
        if search is None or search.answered:
            if self.debug:
                self.info_string("stop: no search is running")
            return
        with search.cond:
            search.stopped = True
            search.cond.notify_all()

    def cmd_ponderhit(self, command: Command) -> None:
        search = self.search
        if search is None or search.answered or not search.go.ponder or search.ponderhit_at is not None:
            if self.debug:
                self.info_string("ponderhit: no ponder search is running")
            return
        with search.cond:
            search.ponderhit_at = time.perf_counter()
            search.cond.notify_all()

    def cmd_setoption(self, command: Command) -> None:
        match = re.fullmatch(r"name\s+(.+?)(?:\s+(value)(?:\s+(.*))?)?", command.rest,
                             flags=re.IGNORECASE | re.DOTALL)
        if not match:
            self.info_string("setoption needs: setoption name <name> value <value>")
            return
        name, has_value, value = match.groups()
        try:
            spec = find_option(name)
            if not has_value:
                raise OptionError(f"setoption name {spec.name} needs: value <value>")
            parsed = spec.parse(value or "")
        except OptionError as exc:
            self.info_string(f"option not changed: {exc}")
            return
        old = self.settings
        self.settings = replace(old, **{spec.field: parsed})
        self._take_effect(spec, changed=self.settings != old)

    def _take_effect(self, spec: OptionSpec, changed: bool) -> None:
        """Do what a new value of ``spec`` calls for (``OptionSpec.effect``) beyond storing it."""
        match spec.effect:
            case Effect.RESEED:
                self._seed_generators()
            case Effect.REOPEN_LOG:
                self.output.set_log(self.settings.log_file)
            case Effect.RELOAD_MODEL if changed:
                self.start_loading()
            case Effect.UNUSED if self.debug:  # not a mistake: no word unless asked
                self.info_string(f"{spec.name} is accepted for GUI compatibility and not used by this engine")

    def cmd_position(self, command: Command) -> None:
        args = command.args
        if not args or args[0].lower() not in ("startpos", "fen"):
            self.info_string("position ignored: it needs 'startpos' or 'fen <FEN>' (then optionally 'moves ...')")
            return
        lowered = [a.lower() for a in args]
        end = lowered.index("moves") if "moves" in lowered else len(args)
        if args[0].lower() == "startpos":
            if end != 1:
                self.info_string(f"position ignored: unexpected {shown(' '.join(args[1:end]))} after startpos")
                return
            board = chess.Board()
        else:
            fen = " ".join(args[1:end])
            try:
                board = chess.Board(fen)
            except ValueError as exc:
                self.info_string(f"position ignored: bad FEN {shown(fen, 100)} ({exc})")
                return
            if not board.is_valid():
                problems = [flag.name.lower() for flag in chess.Status if board.status() & flag]
                self.info_string(f"position ignored: FEN {shown(fen, 100)} is not a legal position "
                                 f"({', '.join(problems)})")
                return
        for ply, text in enumerate(args[end + 1 :]):
            try:
                move = parse_uci_move(board, text.lower())
            except ValueError:
                self.info_string(f"illegal move {shown(text)} at move {ply + 1} of the list; "
                                 f"the position stops before it: {board.fen()}")
                break
            board.push(move)
        self.board = board

    def cmd_go(self, command: Command) -> None:
        go, problems = parse_go(command.args)
        for problem in problems:
            self.info_string(problem)
        if self.search is not None and not self.search.answered and not self.search.stopped:
            self.info_string("go while searching: the running search answers first")
            self._stop()
        self._finish_search()
        board = self.board.copy()
        searchmoves = self._searchmoves(board, go.searchmoves) if go.searchmoves else None
        settings = self.settings
        limit = time_limit(go, board.turn, settings.move_overhead)
        if self.debug:
            self.info_string(f"time limit {'none' if limit is None else f'{limit * 1000:.0f} ms'}")
        self.start_loading()
        search = Search(board, go, settings, searchmoves, command.received, limit)
        search.controller = threading.Thread(target=self._control, args=(search,), daemon=True)
        self.search = search
        search.controller.start()

    COMMANDS: dict[str, Callable[[UciEngine, Command], None]] = {
        "uci": cmd_uci, "debug": cmd_debug, "isready": cmd_isready, "setoption": cmd_setoption,
        "register": cmd_register, "ucinewgame": cmd_ucinewgame, "position": cmd_position, "go": cmd_go,
        "stop": cmd_stop, "ponderhit": cmd_ponderhit, "quit": cmd_quit,
    }
    """The handler of each command; an unknown command's note lists them in this order."""

    def _searchmoves(self, board: chess.Board, texts: tuple[str, ...]) -> list[chess.Move] | None:
        moves = []
        for text in texts:
            try:
                moves.append(parse_uci_move(board, text.lower()))
            except ValueError:
                self.info_string(f"searchmoves: {shown(text)} is not a legal move here, ignored")
        if not moves and any(board.legal_moves):
            self.info_string("searchmoves: no legal move given, searching all moves")
            return None
        return moves or None

    def _finish_search(self, timeout: float | None = None) -> None:
        """Wait for the last search's controller (it has been told to stop, or will end by itself)."""
        if self.search is not None and self.search.controller is not None:
            self.search.controller.join(timeout)

    # -- searching ------------------------------------------------------------------------------------
    def _control(self, search: Search) -> None:
        """Wait for the answer, stop, ponderhit or the time limit; then write exactly one bestmove.

        A ``stop`` that comes while the model is evaluating waits up to ``STOP_GRACE`` seconds for it,
        so that stopping an analysis right away still shows the model's move.
        """
        threading.Thread(target=self._think, args=(search,), daemon=True).start()
        grace_end = None
        with search.cond:
            while True:
                now = time.perf_counter()
                if search.stopped:
                    grace_end = now + STOP_GRACE if grace_end is None else grace_end
                    if search.phase is not Phase.EVALUATING or now >= grace_end:
                        break
                    search.cond.wait(grace_end - now)
                    continue
                if search.phase is Phase.READY and not search.waiting():
                    break
                remaining = search.remaining()
                if remaining is not None and remaining <= 0:
                    break
                search.cond.wait(remaining)
            search.phase = Phase.ANSWERED
        self._answer(search)

    def _think(self, search: Search) -> None:
        """Run the model for ``search`` and publish what it found (on its own thread)."""
        try:
            if not any(search.board.legal_moves):
                self._publish(search, failure=None)
                return
            loaded = self.loader.wait()
            usable = search.loaded = self.loader.usable(loaded)
            if usable is None:
                self._publish(search, failure=f"no model ({loaded.error})")
                return
            with self._policy_lock:
                if search.answered:
                    return
                policy = usable.policy
                if self._new_game:
                    self._new_game = False
                    policy.reset()
                costs = usable.costs[search.settings.sampling]
                estimate, remaining = costs.estimate(), search.remaining()
                spare = None if remaining is None else max(remaining - (estimate or 0.0), 0.0)
                policy.settle_history(search.board, None if spare is None else spare * HISTORY_SHARE)
                remaining = search.remaining()  # less what the history search took
                if estimate is not None and remaining is not None and estimate > remaining:
                    costs.forget_oldest()
                    self._publish(search, failure=f"no time for the model: it takes about {estimate * 1000:.0f} ms "
                                                  f"and {max(remaining, 0) * 1000:.0f} ms are left")
                    return
                search.advance(Phase.EVALUATING)
                start = time.perf_counter()
                thought = think(policy, search.board, search.settings.choice(), search.searchmoves, self.rng,
                                want_scores=search.settings.multipv > 1)
                costs.add(time.perf_counter() - start)
                search.thought = thought
                search.advance(Phase.PREDICTING if search.settings.ponder else Phase.READY)
                if not search.settings.ponder:
                    return
                remaining = search.remaining()
                reply = None
                if remaining is None or remaining > (usable.costs["move"].estimate() or 0.0):
                    reply = predict_reply(policy, search.board, thought.move)
                search.ponder_move = reply
                search.advance(Phase.READY)
        except Exception as exc:
            self.output.log_note(traceback.format_exc())
            self._publish(search, failure=f"internal error ({type(exc).__name__}: {exc})")

    @staticmethod
    def _publish(search: Search, failure: str | None) -> None:
        search.failure = failure
        search.advance(Phase.READY)

    def _answer(self, search: Search) -> None:
        board = search.board
        elapsed = time.perf_counter() - search.received
        if not any(board.legal_moves):
            self.send(f"info depth 0 score {'mate 0' if board.is_checkmate() else 'cp 0'}")
            self.send("bestmove 0000")
            return
        thought = search.thought
        if thought is None:
            candidates = search.searchmoves or list(board.legal_moves)
            move = self.fallback_rng.choice(candidates)
            reason = search.failure or ("stopped before the model answered" if search.stopped
                                        else "the time limit came before the model answered")
            self.info_string(f"{reason}: {RANDOM_MOVE_NOTE}")
            self.send(f"info depth 1 seldepth 1 multipv 1 score cp 0 nodes 0 time {elapsed * 1000:.0f} pv {move.uci()}")
            self.send(f"bestmove {move.uci()}")
            return
        for note in thought.notes:
            self.info_string(note)
        if self.debug and thought.scores is not None:
            self.info_string(f"prompt (last 200 symbols): {thought.scores.prompt[-200:]}")
        self._announce_scoring(search)
        for line in self._info_lines(search, thought, elapsed):
            self.send(line)
        ponder = f" ponder {search.ponder_move.uci()}" if search.ponder_move is not None else ""
        self.send(f"bestmove {thought.move.uci()}{ponder}")

    def _announce_scoring(self, search: Search) -> None:
        loaded = search.loaded
        if loaded is None or loaded.announced:
            return
        loaded.announced = True
        if not loaded.policy.model.info.has_value_head:
            self.info_string("this model has no value head: 'score cp 0' means no evaluation, not a level position")

    def _info_lines(self, search: Search, thought: Thought, elapsed: float) -> list[str]:
        board, settings, scores = search.board, search.settings, thought.scores
        nodes = len(scores.moves) if scores is not None else board.legal_moves.count()
        ms = max(round(elapsed * 1000), 1)
        stats = f"nodes {nodes} nps {nodes * 1000 // ms} time {ms}"
        wdl = scores.wdl if scores is not None else None
        lines = []
        if settings.multipv > 1 and scores is not None:
            ranked = scores.ranked()[: settings.multipv]
            for k, (move, _, _) in enumerate(ranked, start=1):
                score = score_text(board, move, wdl, settings.show_wdl)
                lines.append(f"info depth 1 seldepth 1 multipv {k} {score} {stats} pv {move.uci()}")
            listing = ", ".join(f"{k}. {move.uci()} {p:.1%}" for k, (move, _, p) in enumerate(ranked, start=1))
            lines.append(f"info string most probable moves: {listing}")
        else:
            pv = thought.move.uci() + (f" {search.ponder_move.uci()}" if search.ponder_move is not None else "")
            score = score_text(board, thought.move, wdl, settings.show_wdl)
            lines.append(f"info depth 1 seldepth 1 multipv 1 {score} {stats} pv {pv}")
        probability = thought.probability(thought.move)
        chance = f", probability {probability:.1%}" if probability is not None else ""
        lines.append(f"info string played {thought.move.uci()}{chance}, temperature {thought.temperature:g}")
        return lines

    def _report_load_error(self, loaded: Loaded) -> None:
        usable = self.loader.usable(loaded)
        still = f"still playing with {usable.key[0]}" if usable is not None else "moves are random until a model loads"
        self.info_string(f"error: {loaded.error}; {still}")

    def shutdown(self, stop: bool) -> None:
        """End a running search and close the log: at ``quit`` the search is stopped (it still answers);
        at the end of input (a script piping commands) a timed search may finish, an infinite or
        pondering one is stopped."""
        search = self.search
        if search is not None and not search.answered and (stop or search.waiting()):
            self._stop()
        self._finish_search(timeout=None if not stop else 5)
        self.output.close()
