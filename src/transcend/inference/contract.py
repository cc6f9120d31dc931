"""The ONNX format contract: what ``transcend export`` writes and ``inference.runtime`` reads.

Both sides import these names, so the writer and the reader cannot drift apart. docs/formats.md
describes the format for users. Imports nothing: the UCI entry point reads it before anything heavy.
"""

from __future__ import annotations

FORMAT_VERSION = "2"
"""Format 2: one past key and one past value input per layer, and only the new symbols' keys and
values out (the caller appends them), so the cache is never copied inside the graph."""
READABLE_FORMATS = ("1", "2")
"""Format 1 (stacked past in, the whole cache out) is still read: early exports and the interim bundled model."""

# Inputs. ``tokens`` and ``positions``: int64 (batch, new); ``attn_mask``: bool (batch, new, past + new),
# True where attention is allowed.
TOKENS = "tokens"
POSITIONS = "positions"
ATTN_MASK = "attn_mask"


def past_key(layer: int) -> str:
    """Format 2: the past keys of one layer, float (batch, n_head, past, head_dim)."""
    return f"past_key_{layer}"


def past_value(layer: int) -> str:
    """Format 2: the past values of one layer, like ``past_key``."""
    return f"past_value_{layer}"


def past_names(n_layer: int) -> list[str]:
    """Format 2's cache inputs in graph order: every layer's key, then every layer's value."""
    return [past_key(i) for i in range(n_layer)] + [past_value(i) for i in range(n_layer)]


def input_names(n_layer: int) -> list[str]:
    """Format 2's inputs in graph order."""
    return [TOKENS, POSITIONS, ATTN_MASK, *past_names(n_layer)]


# Outputs. ``logits``: (batch, new, vocab); ``new_keys`` / ``new_values``: the fed symbols' keys and values
# only, (n_layer, batch, n_head, new, head_dim); ``wdl_logits``: (batch, new, 3), models with a value head.
LOGITS = "logits"
NEW_KEYS = "new_keys"
NEW_VALUES = "new_values"
WDL_LOGITS = "wdl_logits"


def output_names(value_head: bool) -> list[str]:
    """Format 2's outputs in graph order."""
    return [LOGITS, NEW_KEYS, NEW_VALUES] + ([WDL_LOGITS] if value_head else [])


# Format 1: the whole cache stacked in one input and out in one output, (n_layer, batch, n_head, past, head_dim).
V1_PAST_KEYS = "past_keys"
V1_PAST_VALUES = "past_values"
V1_PRESENT_KEYS = "present_keys"
V1_PRESENT_VALUES = "present_values"

# Metadata properties of the ONNX file (strings).
META_FORMAT_VERSION = "transcend.format_version"
META_VOCAB = "transcend.vocab"
"""The transcript vocabulary, in id order."""
META_MODEL_CONFIG = "transcend.model_config"
"""``GPTConfig.to_dict()`` as JSON."""
META_SOURCE = "transcend.source"
"""The name of what was exported (a run directory or a checkpoint file)."""
META_QUANTIZATION = "transcend.quantization"
"""none, int8 or fp16."""
META_CARD = "transcend.card"
"""The model card (``transcend.card``) as JSON."""
