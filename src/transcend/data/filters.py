"""Which games a dataset keeps: rating bounds, game length, time-control class, termination.

Every rejected game gets one reason, counted in ``meta.json``; the reasons are listed in REASONS.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .pgn import tag
from .sources import DataError

TIME_CONTROL_CLASSES = ("ultrabullet", "bullet", "blitz", "rapid", "classical", "correspondence")
"""lichess's speed classes, by estimated game duration ``base + 40 * increment`` in seconds:
< 30 ultrabullet, < 180 bullet, < 480 blitz, < 1500 rapid, < 21600 classical, else correspondence
(also ``-``, lichess's mark for correspondence and unlimited games)."""
_CLASS_LIMITS = ((30, "ultrabullet"), (180, "bullet"), (480, "blitz"), (1500, "rapid"), (21600, "classical"))

ELO_RULES = ("both", "either")

REASONS = {
    "no_headers": "movetext with no tag block before it (garbage, or a game missing its header)",
    "variant": "a Variant tag other than Standard / chess",
    "custom_start": "the game starts from a FEN position (FEN or SetUp tag)",
    "missing_rating": "a rating filter is set and a needed WhiteElo / BlackElo is missing or not a number",
    "rating": "ratings outside --min-elo / --max-elo",
    "time_control": "TimeControl missing, unreadable, or not of the chosen classes",
    "termination": "Termination missing or not one of the chosen ones",
    "invalid_utf8": "the movetext is not valid UTF-8",
    "parse_error": "a movetext token that is not a SAN move (or unreadable movetext)",
    "no_moves": "a game with no moves",
    "too_short": "fewer plies than --min-moves",
    "too_long": "more plies than --max-moves",
    "illegal_move": "an illegal or ambiguous move (only checked with --validate)",
    "truncated": "the game was cut off by a truncated or corrupt compressed stream",
}


def time_control_class(value: str | bytes | None) -> str | None:
    """lichess speed class of a TimeControl tag (``180+2``, ``600``, ``-``); None when unreadable."""
    if value is None:
        return None
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    text = text.strip()
    if text == "-":
        return "correspondence"
    base, plus, increment = text.partition("+")
    try:
        seconds = int(base) + 40 * (int(increment) if plus else 0)
    except ValueError:
        return None
    if seconds < 0 or (plus and int(increment) < 0):
        return None
    for limit, name in _CLASS_LIMITS:
        if seconds < limit:
            return name
    return "correspondence"


def normalize_termination(value: str) -> str:
    """``Time forfeit``, ``time-forfeit`` and ``TIME_FORFEIT`` compare equal."""
    return " ".join(value.replace("-", " ").replace("_", " ").lower().split())


def _rating(value: bytes | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class GameFilter:
    """What a dataset keeps. Moves are counted in plies (one move by one side).

    Ratings: with ``elo_rule="both"`` (the paper's rule) both players must be within
    [min_elo, max_elo]; with ``"either"`` one of them is enough. Standard chess from the initial
    position only, always.
    """

    max_elo: int | None = None
    min_elo: int | None = None
    elo_rule: str = "both"
    min_moves: int = 1
    max_moves: int = 1000
    time_controls: frozenset[str] = field(default_factory=frozenset)
    """Speed classes to keep (TIME_CONTROL_CLASSES); empty keeps all."""
    terminations: frozenset[str] = field(default_factory=frozenset)
    """Termination tag values to keep (compared normalised); empty keeps all."""

    def __post_init__(self) -> None:
        if self.elo_rule not in ELO_RULES:
            raise DataError(f"elo rule {self.elo_rule!r}: use one of {', '.join(ELO_RULES)}")
        unknown = set(self.time_controls) - set(TIME_CONTROL_CLASSES)
        if unknown:
            raise DataError(f"unknown time-control class {sorted(unknown)[0]!r}; use {', '.join(TIME_CONTROL_CLASSES)}")
        if self.min_moves < 0 or self.max_moves < self.min_moves:
            raise DataError(f"move bounds {self.min_moves}..{self.max_moves} are empty")
        if self.min_elo is not None and self.max_elo is not None and self.min_elo > self.max_elo:
            raise DataError(f"--min-elo {self.min_elo} is above --max-elo {self.max_elo}")
        object.__setattr__(self, "terminations", frozenset(normalize_termination(t) for t in self.terminations))
        object.__setattr__(self, "time_controls", frozenset(self.time_controls))

    def reject_tags(self, tags: bytes) -> str | None:
        """Why a game is not kept, judging by its tags alone (None: keep reading it)."""
        variant = tag(tags, b"Variant")
        if variant is not None and variant.strip().lower() not in (b"standard", b"chess", b""):
            return "variant"
        if tag(tags, b"FEN") is not None or tag(tags, b"SetUp") == b"1":
            return "custom_start"
        if self.max_elo is not None or self.min_elo is not None:
            reason = self._reject_ratings(_rating(tag(tags, b"WhiteElo")), _rating(tag(tags, b"BlackElo")))
            if reason:
                return reason
        if self.time_controls and time_control_class(tag(tags, b"TimeControl")) not in self.time_controls:
            return "time_control"
        if self.terminations:
            value = tag(tags, b"Termination")
            if value is None or normalize_termination(value.decode("utf-8", "replace")) not in self.terminations:
                return "termination"
        return None

    def _reject_ratings(self, white: int | None, black: int | None) -> str | None:
        low = self.min_elo if self.min_elo is not None else -(2**31)
        high = self.max_elo if self.max_elo is not None else 2**31
        inside = [r is not None and low <= r <= high for r in (white, black)]
        if all(inside) or (self.elo_rule == "either" and any(inside)):
            return None
        return "missing_rating" if None in (white, black) else "rating"

    def reject_length(self, plies: int) -> str | None:
        if plies == 0:
            return "no_moves"
        if plies < self.min_moves:
            return "too_short"
        if plies > self.max_moves:
            return "too_long"
        return None

    def describe(self) -> dict:
        """The filter as written in meta.json."""
        return {
            "max_elo": self.max_elo,
            "min_elo": self.min_elo,
            "elo_rule": self.elo_rule,
            "min_moves": self.min_moves,
            "max_moves": self.max_moves,
            "time_controls": sorted(self.time_controls),
            "terminations": sorted(self.terminations),
        }
