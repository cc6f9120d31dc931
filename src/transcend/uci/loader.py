"""Models loaded on background threads, so that the engine answers while a model loads.

The latest request is the one that counts; when it fails, the last model that did load stays in use.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field

import chess

from ..inference.history import warm_up as warm_up_history_search
from ..inference.policy import MovePolicy
from ..inference.runtime import OnnxModel
from .options import Settings
from .timeman import CostTracker


@dataclass(eq=False)
class Loaded:
    """One model load: its result, and how long its evaluations take."""

    key: tuple[str, str, int]
    done: threading.Event = field(default_factory=threading.Event)
    policy: MovePolicy | None = None
    error: str | None = None
    costs: dict[str, CostTracker] = field(default_factory=lambda: defaultdict(CostTracker))
    """By sampling mode: token mode costs several times what move mode does."""
    announced: bool = False


class ModelLoader:
    """Loads models on background threads; the latest request is the one that counts, and when it
    fails the last model that did load stays in use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: Loaded | None = None
        self._last_good: Loaded | None = None

    def request(self, settings: Settings) -> None:
        key = (str(settings.model_path()), settings.provider, settings.threads)
        with self._lock:
            if self._current is not None and self._current.key == key:
                return
            self._current = Loaded(key)
            threading.Thread(target=self._load, args=(self._current,), daemon=True).start()

    def wait(self) -> Loaded:
        """The latest requested load, once it has finished."""
        while True:
            with self._lock:
                current = self._current
            if current is None:
                raise RuntimeError("ModelLoader.wait() before any request()")
            current.done.wait()
            if current is self._current:
                return current

    def usable(self, loaded: Loaded) -> Loaded | None:
        """``loaded`` if it worked, else the last load that did (None if none ever did)."""
        return loaded if loaded.policy is not None else self._last_good

    def _load(self, loaded: Loaded) -> None:
        path, provider, threads = loaded.key
        try:
            policy = MovePolicy(OnnxModel(path, provider=provider, threads=threads))
            policy.score_legal_moves(chess.Board())  # warm-up: the first run allocates, later ones are faster
            warm_up_history_search()
            loaded.policy = policy
            with self._lock:
                self._last_good = loaded
        except Exception as exc:  # ModelError, or onnxruntime failing on a model it accepted
            loaded.error = " ".join(str(exc).split()) or type(exc).__name__
        finally:
            loaded.done.set()
