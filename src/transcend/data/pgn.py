"""PGN games as bytes: split a chunk into games, read tags, and turn movetext into SAN moves fast.

No game is replayed here. The movetext is cleaned textually, which is what makes reading lichess
dumps fast (tens of thousands of games a second on one core):

* the fast path covers lichess's layout (``1. e4 { [%clk 0:03:00] } 1... e5 {...} 2. Nf3?! ...``) and
  python-chess's (``1. e4 e5 2. Nf3 Nc6``): comments dropped, ``!``/``?`` suffixes dropped, and the
  move numbers checked by comparing whole token slices with the expected numbers;
* anything else (variations, NAGs, ``;`` comments, ``1.e4`` glued, odd numbering) goes through a
  general cleaner that removes comments, variations, NAGs and move numbers wherever they are.

Both end with a check that every move has the shape of a SAN move (a regex, cached per distinct
move). Legality is only checked when the caller replays the game (``--validate``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

RESULT_CODES = {b"1-0": 0, b"1/2-1/2": 1, b"0-1": 2, b"*": -1}
"""PGN result token to the game index's result: 0 White won, 1 draw, 2 Black won, -1 unknown."""

_SAN = re.compile(
    rb"(?:[KQRBN][a-h]?[1-8]?x?[a-h][1-8]|[a-h](?:x[a-h])?[1-8](?:=[QRBN])?|O-O(?:-O)?)[+#]?"
)
_COMMENT = re.compile(rb"\{[^}]*\}")
_ANY_COMMENT = re.compile(rb"\{[^}]*\}?|;[^\n]*")  # whichever opens first wins; an unclosed { runs to the end
_ESCAPE_LINE = re.compile(rb"^%[^\n]*", re.M)
_NAG = re.compile(rb"\$\d+")
_MOVE_NUMBER = re.compile(rb"\d+\.+")
_PARENS = re.compile(rb"[()]")
_TAGS: dict[bytes, re.Pattern[bytes]] = {}

_known_sans: set[bytes] = set()
"""Moves already seen to have SAN shape (bounded by the few hundred thousand possible SAN strings)."""

# Move numbers as lichess (1. e4 1... e5) and python-chess (1. e4 e5) write them, and the separators
# that rebuild a transcript: ";1." before White's first move, " 2." before White's next, " " else.
_LICHESS_NUMBERS: list[bytes] = []
_WHITE_NUMBERS: list[bytes] = []
_SEPARATORS: list[bytes | None] = []


def _grow_tables(plies: int) -> None:
    while len(_LICHESS_NUMBERS) < plies + 2:
        move = len(_WHITE_NUMBERS) + 1
        _WHITE_NUMBERS.append(b"%d." % move)
        _LICHESS_NUMBERS.extend((b"%d." % move, b"%d..." % move))
        _SEPARATORS.extend((b" %d." % move if move > 1 else b";1.", None, b" ", None))


_grow_tables(600)


def split_games(chunk: bytes) -> Iterator[tuple[bytes | None, bytes | None]]:
    """(tags, movetext) of each game in a chunk of whole games; either may be None.

    A game is a block of tag lines followed by the next block of movetext (blocks are separated by
    blank lines). Tags with no movetext after them give ``(tags, None)``; movetext with no tags
    before it (garbage, a game missing its header) gives ``(None, movetext)``.
    """
    tags = None
    for block in chunk.split(b"\n\n"):
        block = block.strip()
        if not block:
            continue
        if block[0] == 0x5B:  # "["
            if tags is not None:
                yield tags, None
            if block[-1] == 0x5D:  # "]": tags only
                tags = block
                continue
            tags, movetext = _split_tags_from_moves(block)
            if movetext is None:
                continue
            yield tags, movetext
            tags = None
        else:
            yield tags, block
            tags = None
    if tags is not None:
        yield tags, None


def _split_tags_from_moves(block: bytes) -> tuple[bytes, bytes | None]:
    """Tags and movetext written with no blank line between them."""
    lines = block.split(b"\n")
    for i, line in enumerate(lines):
        if not line.lstrip().startswith(b"["):
            return b"\n".join(lines[:i]), b"\n".join(lines[i:])
    return block, None


def tag(tags: bytes, name: bytes) -> bytes | None:
    """The value of tag ``name`` (``[Name "value"]``), or None."""
    pattern = _TAGS.get(name)
    if pattern is None:
        pattern = _TAGS[name] = re.compile(rb"\[" + re.escape(name) + rb'\s+"([^"\n]*)"')
    match = pattern.search(tags)
    return match.group(1) if match else None


def result_code(tags: bytes | None, movetext: bytes) -> int:
    """The game's result from its Result tag, else from the movetext's last token."""
    value = tag(tags, b"Result") if tags is not None else None
    if value not in RESULT_CODES:
        tail = movetext.rsplit(None, 1)
        value = tail[-1] if tail else None
    return RESULT_CODES.get(value, -1)


def sans_from_movetext(movetext: bytes) -> list[bytes] | None:
    """The SAN moves of a movetext (comments, variations, NAGs, numbers, suffixes, result removed).

    None when the movetext is not understood (a token that is not a SAN move).
    """
    sans = _fast_sans(movetext)
    if sans is None:
        sans = _general_sans(movetext)
    known = _known_sans
    if not known.issuperset(sans):
        for san in sans:
            if san not in known:
                if _SAN.fullmatch(san) is None:
                    return None
                known.add(san)
    return sans


def _fast_sans(movetext: bytes) -> list[bytes] | None:
    if b"{" in movetext:
        movetext = _COMMENT.sub(b" ", movetext)
        if b"}" in movetext or b"{" in movetext:
            return None
    if b"(" in movetext or b";" in movetext or b"$" in movetext or b"%" in movetext:
        return None
    if b"?" in movetext or b"!" in movetext:
        movetext = movetext.translate(None, b"?!")
    tokens = movetext.split()
    if tokens and tokens[-1] in RESULT_CODES:
        tokens.pop()
    n = len(tokens)
    if n + 2 > len(_LICHESS_NUMBERS):
        _grow_tables(n)
    if tokens[0::2] == _LICHESS_NUMBERS[: (n + 1) // 2]:
        return tokens[1::2]
    if tokens[0::3] == _WHITE_NUMBERS[: (n + 2) // 3]:
        del tokens[0::3]
        return tokens
    return None


def _general_sans(movetext: bytes) -> list[bytes]:
    text = _ESCAPE_LINE.sub(b"", movetext) if b"%" in movetext else movetext
    text = _ANY_COMMENT.sub(b" ", text)
    if b"(" in text or b")" in text:
        text = _strip_variations(text)
    text = _NAG.sub(b" ", text)
    text = _MOVE_NUMBER.sub(b" ", text)
    tokens = text.translate(None, b"?!").split()
    if tokens and tokens[-1] in RESULT_CODES:
        tokens.pop()
    return tokens


def _strip_variations(text: bytes) -> bytes:
    out, depth, pos = [], 0, 0
    for paren in _PARENS.finditer(text):
        if depth == 0:
            out.append(text[pos : paren.start()])
        depth = depth + 1 if paren.group() == b"(" else max(0, depth - 1)
        pos = paren.end()
    if depth == 0:
        out.append(text[pos:])
    return b" ".join(out)


def transcript_bytes(sans: list[bytes]) -> bytes:
    """The paper's transcript of SAN moves, as ASCII bytes: ``;1.e4 e5 2.Nf3``."""
    n = len(sans)
    if 2 * n > len(_SEPARATORS):
        _grow_tables(n)
    parts = _SEPARATORS[: 2 * n]
    parts[1::2] = sans
    return b"".join(parts)  # type: ignore[arg-type]
