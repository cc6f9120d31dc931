"""Exact move probabilities from the model, over legal moves only (DESIGN section 5, ``move`` mode).

P(move) is the product of the probabilities of its SAN symbols and of the space that follows, given
the game's transcript. All legal moves are scored in one forward pass: their SAN strings form a prefix
tree that is fed as one flattened sequence on top of the cached game prefix, each node attending to the
prefix, its ancestors and itself, at position ``len(prefix) + depth``. The KV cache of the prefix is
kept between calls, so a move in a continuing game only processes the symbols added since the last one.
"""

from __future__ import annotations

from dataclasses import dataclass

import chess
import numpy as np

from ..transcript import GAME_START, SPACE_ID, encode, next_move_prefix, sans_from_moves
from .runtime import OnnxModel


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


def game_prompt(board: chess.Board) -> str:
    """The transcript up to the next move for ``board``'s move stack (from the standard start).

    A position with no usable history (set up from a FEN) gets only its move number; the engine core
    replaces this with a reconstructed history where one can be found.
    """
    root = board.root()
    if root.fen() == chess.STARTING_FEN:
        return next_move_prefix(sans_from_moves(board.move_stack, root))
    return GAME_START + (f"{board.fullmove_number}." if board.turn == chess.WHITE else "")


def fit_context(prompt: str, room: int) -> str:
    """Keep the prompt within ``room`` symbols: past that, ``;`` plus the latest whole moves.

    The fallback for games longer than the context: the model sees the most recent moves, starting
    at one of White's move numbers, as if the game began there.
    """
    if len(prompt) <= room:
        return prompt
    cut = len(prompt) - (room - 1)
    while cut < len(prompt) and not (prompt[cut - 1] == " " and prompt[cut].isdigit()):
        cut += 1
    return GAME_START + prompt[cut:]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


@dataclass
class _MoveTree:
    tokens: np.ndarray  # symbol of each node
    depth: np.ndarray  # 0 for a first symbol
    ancestors: np.ndarray  # (N, N) bool: node j is node i or one of its ancestors
    paths: list[list[int]]  # per move, its nodes from the root down
    max_depth: int


def build_move_tree(sans: list[str]) -> _MoveTree:
    """Flatten the SAN strings of the legal moves into a prefix tree of symbols."""
    index: dict[tuple[int, int], int] = {}
    tokens: list[int] = []
    parents: list[int] = []
    paths = []
    for san in sans:
        parent, path = -1, []
        for symbol in encode(san).tolist():
            node = index.get((parent, symbol))
            if node is None:
                node = len(tokens)
                index[(parent, symbol)] = node
                tokens.append(symbol)
                parents.append(parent)
            path.append(node)
            parent = node
        paths.append(path)
    n = len(tokens)
    ancestors = np.zeros((n, n), dtype=bool)
    depth = np.zeros(n, dtype=np.int64)
    for node, parent in enumerate(parents):
        if parent >= 0:
            ancestors[node] = ancestors[parent]
            depth[node] = depth[parent] + 1
        ancestors[node, node] = True
    return _MoveTree(np.array(tokens, dtype=np.int64), depth, ancestors, paths, int(depth.max(initial=0)) + 1)


class MovePolicy:
    """Scores legal moves with an ONNX model, keeping the KV cache of the current game."""

    def __init__(self, model: OnnxModel) -> None:
        self.model = model
        self.reset()

    def reset(self) -> None:
        self._ids: list[int] = []
        self._keys, self._values = self.model.empty_cache()

    def score_legal_moves(self, board: chess.Board) -> MoveScores:
        moves = list(board.legal_moves)
        if not moves:
            return MoveScores([], [], np.zeros(0), None, "")
        sans = [board.san(m) for m in moves]
        tree = build_move_tree(sans)
        prompt = fit_context(game_prompt(board), self.model.info.block_size - tree.max_depth)
        ids = encode(prompt).tolist()

        # Reuse the cache of the longest common prefix; at least one symbol is fed, for its logits.
        common = 0
        limit = min(len(self._ids), len(ids) - 1)
        while common < limit and self._ids[common] == ids[common]:
            common += 1
        past_k = self._keys[:, :, :, :common]
        past_v = self._values[:, :, :, :common]
        new = ids[common:]
        n_new, n_tree = len(new), len(tree.tokens)
        total = common + n_new + n_tree

        mask = np.zeros((n_new + n_tree, total), dtype=bool)
        mask[:n_new, : common + n_new] = np.tril(np.ones((n_new, common + n_new), dtype=bool), k=common)
        mask[n_new:, : common + n_new] = True
        mask[n_new:, common + n_new :] = tree.ancestors
        tokens = np.concatenate([np.array(new, dtype=np.int64), tree.tokens])[None]
        positions = np.concatenate([np.arange(common, common + n_new), len(ids) + tree.depth])[None]

        out = self.model.step(tokens, positions, mask[None], past_k, past_v)
        keep = common + n_new
        self._ids = ids
        self._keys = out.keys[:, :, :, :keep]
        self._values = out.values[:, :, :, :keep]

        logp = log_softmax(out.logits[0])  # row n_new-1: the prompt's last symbol
        first = n_new - 1
        log_probs = np.empty(len(moves))
        for i, path in enumerate(tree.paths):
            rows = [first] + [n_new + node for node in path]
            symbols = [int(tree.tokens[node]) for node in path] + [SPACE_ID]
            log_probs[i] = logp[rows, symbols].sum()
        wdl = None
        if out.wdl_logits is not None:
            wdl = np.exp(log_softmax(out.wdl_logits[0, first].astype(np.float64)))
        return MoveScores(moves, sans, log_probs, wdl, prompt)


def choose_move(scores: MoveScores, temperature: float, rng: np.random.Generator) -> chess.Move:
    """Sample from softmax(log p / T) over the legal moves; T <= 0 picks the most probable move."""
    if not scores.moves:
        raise ValueError("no legal move to choose from")
    if temperature <= 0:
        return scores.moves[int(np.argmax(scores.log_probs))]
    z = scores.log_probs / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    return scores.moves[int(rng.choice(len(p), p=p))]
