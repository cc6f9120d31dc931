"""The model: a character-level GPT with nanoGPT's parameter names (``gpt``) and its checkpoint I/O
(``checkpoints``). The training presets, which pair a model shape with a recipe, are in
``transcend.training.config``."""

from .checkpoints import CheckpointError, clean_state_dict, load_model, load_nanogpt_checkpoint, load_state, save_weights
from .gpt import GPT, GPTConfig, ModelConfigError

__all__ = ["GPT", "CheckpointError", "GPTConfig", "ModelConfigError", "clean_state_dict", "load_model",
           "load_nanogpt_checkpoint", "load_state", "save_weights"]
