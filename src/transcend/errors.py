"""The root of every error that bad input can cause.

Each stage raises its own subclass (``DataError``, ``TrainingError``, ``ModelError``, ...). The
``transcend`` command turns exactly these (and ``OSError``, a file that cannot be read or written)
into a one-line message; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class TranscendError(Exception):
    """Input the project cannot use: a bad file, setting, model or position. Its message is for users."""
