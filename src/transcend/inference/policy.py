"""The model's move probabilities (docs/formats.md, "Move probabilities"), and the paper's sampler.

``move`` mode: P(move) is the product of the probabilities of its SAN symbols and of the space that
follows, given the game's transcript. All legal moves are scored in one forward pass: their SAN strings
form a prefix tree that is fed as one flattened sequence on top of the cached game prefix, each node
attending to the prefix, its ancestors and itself, at position ``len(prefix) + depth``. The KV cache of
the prefix is kept between calls, so a move in a continuing game only processes the symbols added since
the last one; it is rebuilt (from the longest common prefix) when the position is not a continuation.

``token`` mode: the paper's sampler (``transcend.sampling``) symbol by symbol on the same KV cache,
retried up to 5 times when the text is not a legal move, then ``move`` mode.

The model is anything with ``info``, ``empty_cache()`` and ``step()`` like ``runtime.OnnxModel``; the
PyTorch path (``torch_backend.TorchModel``) plugs in here, so both share this code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import chess
import numpy as np

from ..sampling import MAX_ATTEMPTS, MAX_MOVE_SYMBOLS, sample_legal_move, temperature_softmax
from ..transcript import GAME_START, SPACE_ID, encode, next_move_prefix, sans_from_moves
from .history import reconstruct_history
from .runtime import ModelError, ModelInfo, StepOutput

MAX_SETTLED_ROOTS = 256
"""Root positions (FENs) whose history decision a policy keeps: a long tournament sends thousands."""


class StepModel(Protocol):
    """What the policy needs from a model: ``runtime.OnnxModel`` or ``torch_backend.TorchModel``."""

    info: ModelInfo

    def empty_cache(self, batch: int = 1) -> tuple[np.ndarray, np.ndarray]: ...

    def step(self, tokens, positions, attn_mask, past_keys, past_values) -> StepOutput: ...


@dataclass
class MoveScores:
    moves: list[chess.Move]
    sans: list[str]
    log_probs: np.ndarray
    """Natural log of the model's probability of each move (they sum to at most 1 in probability)."""
    wdl: np.ndarray | None
    """Win/draw/loss probabilities for the side to move, when the model has a value head."""
    prompt: str
    """The transcript the model was given."""

    def ranked(self) -> list[tuple[chess.Move, str, float]]:
        order = np.argsort(-self.log_probs, kind="stable")
        return [(self.moves[i], self.sans[i], float(np.exp(self.log_probs[i]))) for i in order]


@dataclass(frozen=True)
class TokenMove:
    move: chess.Move
    illegal_attempts: int
    """Sampled texts that were not a legal move."""
    fell_back: bool
    """True when every attempt was illegal and the move came from ``move`` mode."""
    attempts: tuple[str, ...]
    """Every sampled text, in order."""


# ----------------------------------------------------------------------------------------------
# The prompt

def game_prompt(
    board: chess.Board, stack_sans: list[str] | None = None,
    root_history: Callable[[str], list[str] | None] | None = None,
) -> str:
    """The transcript up to the next move for ``board`` and its move stack.

    From the standard start, the game's own transcript. From another root position (a FEN), a
    reconstructed history from the start where ``history.reconstruct_history`` finds one; otherwise the
    documented fallback: the transcript begins at the root's move number (``;12.``; on Black's turn
    White's unknown move is written ``--``, python-chess's null move: ``;12.-- Nf6 13.``).
    ``stack_sans``: the SAN of the move stack when the caller already has it. ``root_history``: the
    SAN history of a root FEN, or None (by default the full search, cached).
    """
    root = board.root()
    if stack_sans is None:
        stack_sans = sans_from_moves(board.move_stack, root)
    if root.fen() == chess.STARTING_FEN:
        return next_move_prefix(stack_sans)
    history = (root_history or history_sans)(root.fen())
    if history is not None:
        return next_move_prefix(history + stack_sans)
    first_ply = 2 * (root.fullmove_number - 1) + (root.turn == chess.BLACK)
    skipped = next_move_prefix(["--"] * 2 * (root.fullmove_number - 1))  # ';1.-- -- 2.-- -- ... 12.'
    full = next_move_prefix(["--"] * first_ply + stack_sans)
    return GAME_START + full[len(skipped) - len(f"{root.fullmove_number}."):]


def history_sans(fen: str, seconds: float | None = None) -> list[str] | None:
    """SAN of a history from the start to ``fen`` (``history.reconstruct_history``), or None."""
    moves = reconstruct_history(fen, seconds=seconds)
    return None if moves is None else sans_from_moves(moves)


class _StackSans:
    """SAN of a board's move stack, reusing the previous call's: a game's SANs are computed once."""

    def __init__(self) -> None:
        self.root = ""
        self.moves: list[chess.Move] = []
        self.sans: list[str] = []

    def __call__(self, board: chess.Board) -> list[str]:
        root, stack = board.root().fen(), board.move_stack
        same = 0
        if root == self.root:
            limit = min(len(self.moves), len(stack))
            while same < limit and self.moves[same] == stack[same]:
                same += 1
        new = len(stack) - same
        replay = board.copy(stack=new)
        for _ in range(new):
            replay.pop()
        sans = self.sans[:same]
        for move in stack[same:]:
            sans.append(replay.san_and_push(move))
        self.root, self.moves, self.sans = root, list(stack), sans
        return list(sans)


def fit_context(prompt: str, room: int) -> str:
    """Keep the prompt within ``room`` symbols: past that, ``;`` plus the latest whole moves.

    The fallback for games longer than the context: the model sees the most recent moves, starting at
    one of White's move numbers, as if the game began there. The cut moves forward in steps of half the
    room, so it stays put for many moves and the KV cache survives between cuts; it depends only on
    the prompt, so the probabilities of a position do not depend on what was asked before.
    """
    if len(prompt) <= room:
        return prompt
    stride = max(1, room // 2)
    cut = -(-(len(prompt) - (room - 1)) // stride) * stride
    while cut < len(prompt) and not (prompt[cut - 1] == " " and prompt[cut].isdigit()):
        cut += 1
    return GAME_START + prompt[cut:]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


# ----------------------------------------------------------------------------------------------
# The prefix tree of the legal moves

@dataclass
class MoveTree:
    tokens: np.ndarray
    """Symbol of each node (one node per distinct non-empty prefix of the SAN strings)."""
    depth: np.ndarray
    """0 for a first symbol."""
    ancestors: np.ndarray
    """(N, N) bool: node j is node i or one of its ancestors."""
    score_rows: np.ndarray
    """For each symbol of each move (its SAN symbols and the space), the row of the logits that
    predicts it: 0 is the prompt's last symbol, 1 + j is node j."""
    score_symbols: np.ndarray
    score_owner: np.ndarray
    """Index of the move each (row, symbol) pair belongs to."""
    max_depth: int

    def log_probs(self, logp: np.ndarray, n_moves: int) -> np.ndarray:
        """Each move's log-probability from log-softmaxed rows (prompt's last symbol, then the nodes)."""
        return np.bincount(self.score_owner, weights=logp[self.score_rows, self.score_symbols], minlength=n_moves)


def build_move_tree(sans: list[str]) -> MoveTree:
    """Flatten the SAN strings of the legal moves into a prefix tree of symbols."""
    index: dict[str, int] = {}
    tokens: list[int] = []
    parents: list[int] = []
    rows: list[int] = []
    symbols: list[int] = []
    owner: list[int] = []
    for move, san in enumerate(sans):
        ids = encode(san).tolist()
        parent = -1
        for length in range(1, len(ids) + 1):
            node = index.get(san[:length])
            if node is None:
                node = index[san[:length]] = len(tokens)
                tokens.append(ids[length - 1])
                parents.append(parent)
            rows.append(parent + 1)
            parent = node
        rows.append(parent + 1)
        symbols.extend(ids + [SPACE_ID])
        owner.extend([move] * (len(ids) + 1))
    n = len(tokens)
    ancestors = np.zeros((n, n), dtype=bool)
    depth = np.zeros(n, dtype=np.int64)
    for node, parent in enumerate(parents):  # parents come before their children
        if parent >= 0:
            ancestors[node] = ancestors[parent]
            depth[node] = depth[parent] + 1
        ancestors[node, node] = True
    return MoveTree(np.array(tokens, dtype=np.int64), depth, ancestors, np.array(rows), np.array(symbols),
                    np.array(owner), int(depth.max(initial=0)) + 1)


# ----------------------------------------------------------------------------------------------
# The policy

class MovePolicy:
    """Scores legal moves with a model, keeping the KV cache of the current game."""

    def __init__(self, model: StepModel) -> None:
        self.model = model
        # Every prompt leaves room for a move: the longest SAN has 7 symbols, token mode samples 10.
        self.room = model.info.block_size - MAX_MOVE_SYMBOLS
        self._stack_sans = _StackSans()
        self._histories: dict[str, list[str] | None] = {}
        if self.room < 32:
            raise ModelError(f"the model's context ({model.info.block_size} symbols) is too short to play")
        self.reset()

    def reset(self) -> None:
        """Forget the cached game (the next call feeds its whole prompt)."""
        self._ids: list[int] = []
        self._keys, self._values = self.model.empty_cache()

    def settle_history(self, board: chess.Board, seconds: float | None) -> None:
        """Decide now, within ``seconds`` (None: the search's own bounds), which history the game
        from ``board``'s root position gets; the decision holds for every later move from that root.

        A player on a clock cannot afford the 2 s a failed search takes, and a game must keep one
        transcript: so when the time runs out the game is played from the fallback transcript.
        """
        self._settle(board.root().fen(), seconds)

    def _settle(self, fen: str, seconds: float | None) -> None:
        if fen == chess.STARTING_FEN or fen in self._histories:
            return
        if len(self._histories) >= MAX_SETTLED_ROOTS:
            del self._histories[next(iter(self._histories))]
        self._histories[fen] = history_sans(fen, seconds)

    def _root_history(self, fen: str) -> list[str] | None:
        self._settle(fen, None)
        return self._histories[fen]

    def prompt(self, board: chess.Board) -> str:
        """The transcript the model is given for ``board``: its history, fitted to the context."""
        return fit_context(game_prompt(board, self._stack_sans(board), self._root_history), self.room)

    def _feed(self, ids: list[int], tree: MoveTree | None = None) -> StepOutput:
        """Run the model on ``ids`` (and the tree after them), reusing and then extending the cache.

        The cache of the longest common prefix with the previous call is kept; at least the last
        symbol of ``ids`` is fed, for its logits. Rows of the output: the fed part of ``ids``, then the
        tree's nodes.
        """
        common = 0
        limit = min(len(self._ids), len(ids) - 1)
        while common < limit and self._ids[common] == ids[common]:
            common += 1
        past_k = self._keys[:, :, :, :common]
        past_v = self._values[:, :, :, :common]
        new = np.array(ids[common:], dtype=np.int64)
        n_new = len(new)
        n_tree = 0 if tree is None else len(tree.tokens)
        mask = np.zeros((n_new + n_tree, common + n_new + n_tree), dtype=bool)
        mask[:n_new, : common + n_new] = np.tri(n_new, common + n_new, k=common, dtype=bool)
        tokens, positions = new, np.arange(common, common + n_new)
        if tree is not None:
            mask[n_new:, : common + n_new] = True
            mask[n_new:, common + n_new :] = tree.ancestors
            tokens = np.concatenate([new, tree.tokens])
            positions = np.concatenate([positions, len(ids) + tree.depth])
        out = self.model.step(tokens[None], positions[None], mask[None], past_k, past_v)
        self._ids = list(ids)
        self._keys = np.concatenate([past_k, out.new_keys[:, :, :, :n_new]], axis=3)
        self._values = np.concatenate([past_v, out.new_values[:, :, :, :n_new]], axis=3)
        return out

    def score_legal_moves(self, board: chess.Board) -> MoveScores:
        """The model's exact probability of every legal move of ``board`` (``move`` mode)."""
        moves = list(board.legal_moves)
        if not moves:
            return MoveScores([], [], np.zeros(0), None, "")
        sans = [board.san(m) for m in moves]
        tree = build_move_tree(sans)
        prompt = self.prompt(board)
        ids = encode(prompt).tolist()
        out = self._feed(ids, tree)
        n_new = len(out.logits[0]) - len(tree.tokens)
        logp = log_softmax(out.logits[0, n_new - 1 :])  # the prompt's last symbol, then the nodes
        wdl = None
        if out.wdl_logits is not None:
            wdl = np.exp(log_softmax(out.wdl_logits[0, n_new - 1].astype(np.float64)))
        return MoveScores(moves, sans, tree.log_probs(logp, len(moves)), wdl, prompt)

    def next_symbol_logits(self, ids: np.ndarray) -> np.ndarray:
        """Logits of the symbol after ``ids`` (``sampling.NextSymbolLogits``), on the game's KV cache."""
        ids = [int(i) for i in ids]
        if len(ids) > self.model.info.block_size:
            raise ValueError(f"{len(ids)} symbols do not fit the model's context of {self.model.info.block_size}")
        return self._feed(ids).logits[0, -1]

    def token_move(
        self, board: chess.Board, temperature: float, rng: np.random.Generator, attempts: int = MAX_ATTEMPTS
    ) -> TokenMove:
        """The paper's way (``token`` mode): sample symbol by symbol at ``temperature`` until a space;
        retry an illegal text up to ``attempts`` times in all, then fall back to ``move`` mode."""
        if not any(True for _ in board.legal_moves):
            raise ValueError("no legal move to choose from")
        sampled = sample_legal_move(self.next_symbol_logits, board, self.prompt(board), temperature, rng,
                                    max_attempts=attempts)
        if sampled.move is not None:
            return TokenMove(sampled.move, sampled.illegal_attempts, False, sampled.attempts)
        move = choose_move(self.score_legal_moves(board), temperature, rng)
        return TokenMove(move, sampled.illegal_attempts, True, sampled.attempts)


def choose_move(scores: MoveScores, temperature: float, rng: np.random.Generator) -> chess.Move:
    """Sample from softmax(log p / T) over the legal moves; T <= 0 picks the most probable move."""
    if not scores.moves:
        raise ValueError("no legal move to choose from")
    if temperature <= 0:
        return scores.moves[int(np.argmax(scores.log_probs))]
    p = temperature_softmax(scores.log_probs, temperature)
    return scores.moves[int(rng.choice(len(p), p=p))]
