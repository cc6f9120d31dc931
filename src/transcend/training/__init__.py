"""Training: the paper's recipe on a laptop CPU or a GPU cluster, exactly resumable.

* ``config``: ``TrainConfig``, the presets (``paper-50m``, ``small``, ``tiny``), TOML / JSON config files.
* ``windows``: training windows that start at a game start, and the value head's win/draw/loss targets.
* ``evaluate``: validation loss, value-head accuracy, the legal-move rate, MFU.
* ``checkpoint``: the run directory, written atomically.
* ``loop``: ``train()``, one process or ``torchrun`` DDP.
"""

from .config import PRESETS, TrainConfig, TrainingError, preset, read_config_file, resolve_config
from .loop import learning_rate, train

__all__ = ["PRESETS", "TrainConfig", "TrainingError", "learning_rate", "preset", "read_config_file",
           "resolve_config", "train"]
