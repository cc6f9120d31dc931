"""A plausible move history for a position given as a FEN: the model reads transcripts, not FENs.

Tournament runners start games from opening books with ``position fen ...``; the books are shallow (3
to 8 moves from the start), so the position can almost always be reached from the standard start in
the number of plies its move counters say. ``reconstruct_history`` finds such a sequence of legal
moves by a depth-first search, bounded by a node budget and pruned hard:

* the ply count is fixed by the fullmove number and the side to move (when the counters fit no
  history, as when an EPD book gives ``0 1`` for every position, plies up to ``max_plies`` of the
  right parity are tried instead, counters ignored);
* the halfmove clock fixes which plies may capture or move a pawn (none in the last ``h`` plies, one
  at ply ``N - h - 1``);
* material only goes down and castling rights are only lost;
* each side needs at least one move per piece not yet on its target square (castling places two),
  and one opponent move per surplus piece still to be captured.

Moves that bring a piece to its target square are tried first, so the history found is a direct one.
The result is cached per position: a game started from a FEN searches once. A caller on a clock
(the UCI engine) passes ``seconds``: the search then also stops at that deadline, and that outcome is
not cached here (the engine keeps it for the game, see ``MovePolicy.settle_history``).
"""

from __future__ import annotations

import time
from functools import lru_cache

import chess

MAX_PLIES = 24
"""Deepest history searched (12 moves each): beyond the 3 to 8 moves of opening books."""
NODE_BUDGET = 12_000
"""Positions visited at most per reconstruction. A history found takes a median of 3 ms on the book
fixture; a failed search spends the whole budget, about 2 s on a busy 2-core machine."""

_PIECES = chess.PIECE_TYPES


def reconstruct_history(
    target: chess.Board | str, max_plies: int = MAX_PLIES, node_budget: int = NODE_BUDGET,
    seconds: float | None = None,
) -> list[chess.Move] | None:
    """Legal moves from the standard start to ``target`` (same placement, side to move, castling
    rights and en passant square), or None when none is found within the bounds (``node_budget``
    positions, and ``seconds`` of wall-clock time when given).

    A board's move stack is ignored: its own position is the target. The standard start gives ``[]``.
    """
    fen = target.fen() if isinstance(target, chess.Board) else target
    if seconds is None:
        found = _reconstruct_cached(fen, max_plies, node_budget)
    else:
        found = _reconstruct(fen, max_plies, node_budget, time.perf_counter() + seconds)
    return None if found is None else list(found)


@lru_cache(maxsize=256)
def _reconstruct_cached(fen: str, max_plies: int, node_budget: int) -> tuple[chess.Move, ...] | None:
    return _reconstruct(fen, max_plies, node_budget, None)


def _reconstruct(fen: str, max_plies: int, node_budget: int, deadline: float | None) -> tuple[chess.Move, ...] | None:
    try:
        target = chess.Board(fen)
    except ValueError:
        return None
    search = _Search(target, node_budget, deadline)
    if search.impossible:
        return None
    exact = 2 * (target.fullmove_number - 1) + (target.turn == chess.BLACK)
    if exact <= max_plies and target.halfmove_clock <= exact:
        found = search.run(exact, target.halfmove_clock)
        if found is not None:
            return tuple(found)
    for plies in range(target.turn == chess.BLACK, max_plies + 1, 2):
        if plies != exact:
            found = search.run(plies, None)
            if found is not None:
                return tuple(found)
        if search.nodes >= search.budget:
            break
    return None


class _Search:
    def __init__(self, target: chess.Board, node_budget: int, deadline: float | None) -> None:
        self.target = target
        self.key = position_key(target)
        self.budget = node_budget
        self.deadline = deadline
        self.nodes = 0
        self.memo: dict[tuple, int] = {}
        self.squares = {c: {pt: target.pieces_mask(pt, c) for pt in _PIECES} for c in chess.COLORS}
        self.counts = {c: chess.popcount(target.occupied_co[c]) for c in chess.COLORS}
        self.pawns = {c: chess.popcount(target.pawns & target.occupied_co[c]) for c in chess.COLORS}
        castled = {chess.WHITE: chess.BB_C1 | chess.BB_G1, chess.BLACK: chess.BB_C8 | chess.BB_G8}
        self.castled = {c: bool(target.kings & target.occupied_co[c] & castled[c]) for c in chess.COLORS}
        # A target with more pieces or pawns of a colour than the start, or no legal position, is unreachable.
        self.impossible = any(self.counts[c] > 16 or self.pawns[c] > 8 for c in chess.COLORS) or not target.is_valid()

    def run(self, plies: int, halfmove_clock: int | None) -> list[chess.Move] | None:
        """A history of exactly ``plies`` plies; with a clock, the last reset (capture or pawn move)
        comes at ply ``plies - clock - 1`` and none after it."""
        self.plies = plies
        self.reset_at = None if halfmove_clock is None else plies - halfmove_clock - 1
        self.seen: set[tuple] = set()
        board = chess.Board()
        path: list[chess.Move] = []
        return path if self._dfs(board, path) else None

    def _dfs(self, board: chess.Board, path: list[chess.Move]) -> bool:
        ply = len(path)
        left = self.plies - ply
        if left == 0:
            return position_key(board) == self.key
        if self.nodes >= self.budget or not self._reachable(board, left):
            return False
        state = (board._transposition_key(), ply)
        if state in self.seen:
            return False
        self.seen.add(state)
        self.nodes += 1
        if self.deadline is not None and time.perf_counter() > self.deadline:
            self.budget = self.nodes  # out of time: the budget is spent
        for move in self._ordered_moves(board, ply):
            path.append(move)
            board.push(move)
            if self._dfs(board, path):
                return True
            board.pop()
            path.pop()
        return False

    def _reachable(self, board: chess.Board, left: int) -> bool:
        """False when ``left`` plies surely cannot turn ``board`` into the target."""
        if self.target.castling_rights & ~board.castling_rights:
            return False
        mover_moves = (left + 1) // 2  # the side to move now gets the odd plies
        moves_of = {board.turn: mover_moves, not board.turn: left - mover_moves}
        for color in chess.COLORS:
            surplus = chess.popcount(board.occupied_co[color]) - self.counts[color]
            if surplus < 0 or surplus > moves_of[not color]:
                return False
            if chess.popcount(board.pawns & board.occupied_co[color]) < self.pawns[color]:
                return False
            if self._moves_needed(board, color) - self._castling_saves(board, color) > moves_of[color]:
                return False
        return True

    def _castling_saves(self, board: chess.Board, color: chess.Color) -> int:
        """Moves castling can still save ``color`` (king and rook in one move): 2 when the target's
        king stands on a castled square and ``color`` may still castle, else 0."""
        return 2 if self.castled[color] and board.has_castling_rights(color) else 0

    def _moves_needed(self, board: chess.Board, color: chess.Color) -> int:
        """A lower bound on the moves ``color`` still needs: for each target square without its
        piece, the fewest moves any piece of that type needs to get there (blocking ignored)."""
        captures = chess.popcount(board.occupied_co[not color]) > self.counts[not color]
        return sum(self._type_needed(board.pieces_mask(pt, color), pt, color, captures) for pt in _PIECES)

    def _type_needed(self, have: int, piece_type: chess.PieceType, color: chess.Color, captures: bool) -> int:
        """``captures``: whether ``color`` still has opponent pieces to take (else pawns go straight).
        Memoised: the same placements of a piece type recur all through a search."""
        key = (have, piece_type, color, captures)
        needed = self.memo.get(key)
        if needed is None:
            wanted = self.squares[color][piece_type] & ~have
            table = _distances(piece_type, color, captures)
            sources = list(chess.scan_forward(have))
            needed = self.memo[key] = sum(
                min((table[s][square] for s in sources), default=_FAR) for square in chess.scan_forward(wanted))
        return needed

    def _ordered_moves(self, board: chess.Board, ply: int) -> list[chess.Move]:
        """Legal moves allowed at ``ply`` by the halfmove clock and by the mover's remaining moves.

        Order: moves that bring the mover closest to its target placement first; among equals, moves
        of a piece that must leave its square anyway (it stands where the target has no such piece),
        and a piece the opponent must still capture offered where an opponent piece is going.
        """
        color = board.turn
        moves_after = (self.plies - ply - 1) // 2  # the mover's own moves after this one
        needed = self._moves_needed(board, color)
        doomed = chess.popcount(board.occupied_co[color]) > self.counts[color]
        theirs = 0
        for pt in _PIECES:
            theirs |= self.squares[not color][pt] & ~board.pieces_mask(pt, not color)
        scored = []
        for move in board.legal_moves:
            piece = board.piece_type_at(move.from_square)
            if self.reset_at is not None and ply >= self.reset_at:
                resets = piece == chess.PAWN or board.is_capture(move)
                if resets != (ply == self.reset_at):
                    continue
            if move.promotion or board.is_castling(move):
                board.push(move)
                after = self._moves_needed(board, color) - self._castling_saves(board, color)
                board.pop()
            else:
                have = board.pieces_mask(piece, color)
                moved = (have & ~chess.BB_SQUARES[move.from_square]) | chess.BB_SQUARES[move.to_square]
                captures = chess.popcount(board.occupied_co[not color]) > self.counts[not color]
                after = (needed + self._type_needed(moved, piece, color, captures)
                         - self._type_needed(have, piece, color, captures))
                if piece in (chess.KING, chess.ROOK) and self._castling_saves(board, color):
                    board.push(move)  # a king or rook move may lose the right to castle
                    after -= self._castling_saves(board, color)
                    board.pop()
                else:
                    after -= self._castling_saves(board, color)
            if after > moves_after:
                continue
            staying = bool(self.squares[color][piece] & chess.BB_SQUARES[move.from_square])
            offered = doomed and bool(theirs & chess.BB_SQUARES[move.to_square])
            scored.append((after, staying, not offered, len(scored), move))
        scored.sort()
        return [entry[-1] for entry in scored]


_FAR = 99


def warm_up() -> None:
    """Build the distance tables now (about 60 ms), so that the first search, maybe on a clock, does not."""
    for piece_type in _PIECES:
        for color in chess.COLORS:
            for captures in (True, False):
                _distances(piece_type, color, captures)


@lru_cache(maxsize=None)
def _distances(piece_type: chess.PieceType, color: chess.Color, captures: bool = True) -> tuple[tuple[int, ...], ...]:
    """Fewest moves from square to square for a piece on an empty board (``_FAR``: never); without
    ``captures`` a pawn stays on its file."""

    def distance(a: int, b: int) -> int:
        if a == b:
            return 0
        fa, ra, fb, rb = chess.square_file(a), chess.square_rank(a), chess.square_file(b), chess.square_rank(b)
        df, dr = abs(fa - fb), abs(ra - rb)
        if piece_type == chess.PAWN:
            forward = (rb - ra) if color == chess.WHITE else (ra - rb)
            if forward <= 0 or df > (forward if captures else 0):
                return _FAR
            home = 1 if color == chess.WHITE else 6
            return forward - (1 if ra == home and forward >= 2 else 0)
        if piece_type == chess.KING:
            return max(df, dr)
        rook = 1 if df == 0 or dr == 0 else 2
        bishop = 1 if df == dr else (2 if (df + dr) % 2 == 0 else _FAR)
        if piece_type == chess.ROOK:
            return rook
        if piece_type == chess.BISHOP:
            return bishop
        if piece_type == chess.QUEEN:
            return min(rook, bishop)
        return _knight_distance(a, b)

    return tuple(tuple(distance(a, b) for b in chess.SQUARES) for a in chess.SQUARES)


@lru_cache(maxsize=None)
def _knight_distances(start: int) -> tuple[int, ...]:
    dist = [_FAR] * 64
    dist[start], frontier = 0, [start]
    while frontier:
        nxt = []
        for square in frontier:
            for to in chess.scan_forward(chess.BB_KNIGHT_ATTACKS[square]):
                if dist[to] == _FAR:
                    dist[to] = dist[square] + 1
                    nxt.append(to)
        frontier = nxt
    return tuple(dist)


def _knight_distance(a: int, b: int) -> int:
    return _knight_distances(a)[b]


def position_key(board: chess.Board) -> tuple:
    """What must match: placement, side to move, castling rights, a usable en passant square."""
    return (board.board_fen(), board.turn, board.clean_castling_rights(),
            board.ep_square if board.has_legal_en_passant() else None)
