"""The options of ``transcend-uci``: one table gives the UCI ``option`` lines, validates ``setoption``
values, builds the command-line flags and says what a new value sets off (``Effect``), so the
protocol, the command line and the engine cannot drift apart.

Numbers that are not integers (temperatures) are ``type string`` options: python-chess reads a spin
default with ``int()`` and cutechess only takes integer spins.
"""

from __future__ import annotations

import argparse
import enum
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import TranscendError

if TYPE_CHECKING:
    from ..inference.choice import MoveChoice

EMPTY = "<empty>"
"""How a UCI string option shows (and may be set to) the empty string, as Stockfish does."""
BUNDLED = "<bundled>"
"""The ``Model`` value that means the model shipped in the package. A real path is not shown as the
default: python-chess splits ``option`` lines on the words name/type/default/min/max/var, and the
bundled file is called ``default.onnx``."""


class OptionError(TranscendError):
    """A ``setoption`` or command-line value that the engine does not accept."""


class Effect(enum.Enum):
    """What the engine does when ``setoption`` changes an option, beyond keeping the new value."""

    NONE = "none"
    """Nothing: the value is read when it is needed (at the next ``go``)."""
    RESEED = "reseed"
    """New random generators from the seed."""
    REOPEN_LOG = "reopen log"
    """Close the log file and open the new one."""
    RELOAD_MODEL = "reload model"
    """Load the model again in the background, when the value differs from the old one."""
    UNUSED = "unused"
    """Accepted for GUI compatibility only (a word about it in ``debug on``)."""


@dataclass(frozen=True)
class Settings:
    """The engine's option values (defaults here; the command line and ``setoption`` change them)."""

    temperature: float = 0.001
    temperature_decay: int = 0
    temperature_floor: float = 0.0
    sampling: str = "move"
    top_k: int = 0
    seed: int = -1
    multipv: int = 1
    model: str = BUNDLED
    provider: str = "auto"
    threads: int = 0
    log_file: str = ""
    move_overhead: int = 10
    ponder: bool = False
    show_wdl: bool = False
    hash: int = 16
    syzygy_path: str = ""

    def choice(self) -> MoveChoice:
        """The options that decide how a move is picked."""
        from ..inference.choice import MoveChoice  # not at the top: this module must stay light (see main.py)

        return MoveChoice(self.temperature, self.temperature_decay, self.temperature_floor, self.sampling, self.top_k)

    def model_path(self) -> Path:
        from ..inference.runtime import BUNDLED_MODEL  # not at the top: this module must stay light (see main.py)

        return BUNDLED_MODEL if self.model == BUNDLED else Path(self.model)


@dataclass(frozen=True)
class OptionSpec:
    name: str
    """The UCI name (matched case-insensitively)."""
    field: str
    """The ``Settings`` attribute it sets."""
    kind: str
    """The UCI type: check, spin, combo or string."""
    help: str
    flag: str | None = None
    """The command-line flag that mirrors it; None for options kept only for GUI compatibility."""
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    convert: Callable[[str], Any] | None = None
    """For string options: turns the text into the value, raising OptionError."""
    metavar: str | None = None
    """How ``--help`` names the flag's argument."""
    effect: Effect = Effect.NONE
    """What a new value sets off in the engine."""

    def parse(self, text: str) -> Any:
        """The value for ``text`` (a ``setoption`` value or a flag's argument); OptionError if invalid."""
        text = text.strip()
        if self.kind == "check":
            if text.lower() not in ("true", "false"):
                raise OptionError(f"{self.name} is true or false, not {shown(text)}")
            return text.lower() == "true"
        if self.kind == "spin":
            try:
                value = int(text)
            except ValueError:
                raise OptionError(f"{self.name} must be a whole number from {self.low:g} to {self.high:g}, "
                                  f"not {shown(text)}") from None
            self._check_range(value)
            return value
        if self.kind == "combo":
            for choice in self.choices:
                if choice.lower() == text.lower():
                    return choice
            raise OptionError(f"{self.name} is one of {', '.join(self.choices)}, not {shown(text)}")
        if text == EMPTY:
            text = ""
        return self.convert(text) if self.convert else text

    def parse_number(self, text: str) -> float:
        """A float kept in a string option, finite and within [low, high]."""
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise OptionError(f"{self.name} must be a number from {self.low:g} to {self.high:g}, not {shown(text)}")
        self._check_range(value)
        return value

    def _check_range(self, value: float) -> None:
        if not (self.low <= value <= self.high):
            raise OptionError(f"{self.name} must be from {self.low:g} to {self.high:g}, not {value:g}")

    def declaration(self, value: Any) -> str:
        """The ``option name ... type ...`` line that announces this option with ``value`` as default."""
        line = f"option name {self.name} type {self.kind} default {format_value(value)}"
        if self.kind == "spin":
            line += f" min {int(self.low)} max {int(self.high)}"
        for choice in self.choices:
            line += f" var {choice}"
        return line


def shown(text: str, limit: int = 40) -> str:
    """A user-supplied text, quoted, printable and short enough for one ``info string``."""
    quoted = ascii(text)
    return quoted if len(quoted) <= limit else quoted[: limit - 4] + "...'"


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if value == "":
        return EMPTY
    return str(value)


def _model_path(text: str) -> str:
    if text in ("", BUNDLED):
        return BUNDLED
    if not Path(text).is_file():
        raise OptionError(f"Model: {shown(text, 200)} is not a file")
    return text


def _log_file(text: str) -> str:
    if text:
        try:
            with open(text, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise OptionError(f"LogFile: cannot write {shown(text, 200)} ({exc.strerror})") from None
    return text


def _number_option(name: str, field: str, help: str, flag: str, low: float, high: float) -> OptionSpec:
    spec = OptionSpec(name, field, "string", help, flag, low, high, metavar="T")
    return replace(spec, convert=spec.parse_number)


OPTIONS: tuple[OptionSpec, ...] = (
    _number_option("Temperature", "temperature",
                   "sampling temperature over moves: softmax(log p / T); 0 plays the most probable move",
                   "--temperature", 0.0, 100.0),
    OptionSpec("TemperatureDecay", "temperature_decay", "spin",
               "plies over which the temperature moves linearly from Temperature to TemperatureFloor "
               "(0: no decay)", "--temperature-decay", 0, 1000, metavar="PLIES"),
    _number_option("TemperatureFloor", "temperature_floor",
                   "the temperature reached after TemperatureDecay plies", "--temperature-floor", 0.0, 100.0),
    OptionSpec("Sampling", "sampling", "combo",
               "move: sample among legal moves by their exact probability; token: the paper's "
               "symbol-by-symbol sampling (5 attempts, then move mode)", "--sampling", choices=("move", "token")),
    OptionSpec("TopK", "top_k", "spin", "sample only among the K most probable moves (0: all)",
               "--top-k", 0, 256, metavar="K"),
    OptionSpec("Seed", "seed", "spin", "random seed for reproducible games (-1: a fresh one)", "--seed",
               -1, 2**31 - 1, metavar="N", effect=Effect.RESEED),
    OptionSpec("MultiPV", "multipv", "spin", "report the N most probable moves with their probabilities",
               "--multipv", 1, 256, metavar="N"),
    OptionSpec("Model", "model", "string", f"exported .onnx model ({BUNDLED}: the one shipped with the package)",
               "--model", convert=_model_path, metavar="PATH", effect=Effect.RELOAD_MODEL),
    OptionSpec("Provider", "provider", "combo", "onnxruntime device: auto (CUDA when usable), cuda or cpu",
               "--provider", choices=("auto", "cuda", "cpu"), effect=Effect.RELOAD_MODEL),
    OptionSpec("Threads", "threads", "spin", "onnxruntime CPU threads (0: onnxruntime's choice)", "--threads",
               0, 256, metavar="N", effect=Effect.RELOAD_MODEL),
    OptionSpec("LogFile", "log_file", "string", "append every line read and written to this file",
               "--log-file", convert=_log_file, metavar="PATH", effect=Effect.REOPEN_LOG),
    OptionSpec("Move Overhead", "move_overhead", "spin",
               "milliseconds kept back on every move for the GUI's and the network's delays", "--move-overhead",
               0, 5000, metavar="MS"),
    OptionSpec("Ponder", "ponder", "check", "guess the opponent's reply (bestmove ... ponder ...)"),
    OptionSpec("UCI_ShowWDL", "show_wdl", "check", "add win/draw/loss permille to the score (value-head models)",
               "--show-wdl"),
    # Declared so that GUIs and lichess-bot's default configuration start unedited.
    OptionSpec("Hash", "hash", "spin", "accepted for GUI compatibility; the engine keeps no hash table", None,
               1, 1 << 20, effect=Effect.UNUSED),
    OptionSpec("SyzygyPath", "syzygy_path", "string", "accepted for GUI compatibility; tablebases are not used",
               effect=Effect.UNUSED),
)

_BY_NAME = {spec.name.lower(): spec for spec in OPTIONS}


def find_option(name: str) -> OptionSpec:
    """The option called ``name`` (case and repeated spaces ignored); OptionError if there is none."""
    spec = _BY_NAME.get(" ".join(name.split()).lower())
    if spec is None:
        raise OptionError(f"no option called {shown(name)}")
    return spec


def declarations(settings: Settings) -> list[str]:
    """The ``option`` lines of the ``uci`` answer, each showing the current value as its default."""
    return [spec.declaration(getattr(settings, spec.field)) for spec in OPTIONS]


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Add the command-line flag of every option that has one, validated like ``setoption``."""
    defaults = Settings()
    for spec in OPTIONS:
        if spec.flag is None:
            continue
        if spec.kind == "check":
            parser.add_argument(spec.flag, dest=spec.field, action="store_true", help=spec.help)
            continue
        metavar = "{" + ",".join(spec.choices) + "}" if spec.kind == "combo" else spec.metavar
        parser.add_argument(spec.flag, dest=spec.field, type=_flag_type(spec), metavar=metavar,
                            default=getattr(defaults, spec.field),
                            help=f"{spec.help} (UCI option {spec.name!r}; default {format_value(getattr(defaults, spec.field))})")


def _flag_type(spec: OptionSpec) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return spec.parse(text)
        except OptionError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = spec.name  # argparse names the type in some messages
    return parse


def settings_from_args(args: argparse.Namespace) -> Settings:
    values = {spec.field: getattr(args, spec.field) for spec in OPTIONS if spec.flag is not None}
    return replace(Settings(), **values)
