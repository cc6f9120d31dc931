"""A character-level GPT with nanoGPT's parameter names, and its config.

The module layout and parameter names follow nanoGPT exactly (``transformer.wte.weight``,
``transformer.h.0.attn.c_attn.weight``, ..., ``lm_head.weight``), so the paper's released checkpoints
load without a conversion table. Two forward paths share the weights:

* ``forward(idx, targets)``: training, causal attention over whole windows.
* ``forward_cached(tokens, positions, attn_mask, past_keys, past_values)``: inference with a KV cache,
  explicit position ids and an explicit attention mask. It is the only inference forward: the ONNX
  export traces it and the PyTorch policy runs it, and the engine uses it to score every legal move
  at once as a prefix tree on top of the cached game.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from torch.nn import functional as F

from ..errors import TranscendError
from ..transcript import VOCAB


class ModelConfigError(TranscendError):
    """A model shape that cannot be built (an unknown setting, a width that does not split into heads)."""


@dataclass(frozen=True)
class GPTConfig:
    block_size: int = 1023
    vocab_size: int = len(VOCAB)
    n_layer: int = 16
    n_head: int = 8
    n_embd: int = 512
    dropout: float = 0.0
    bias: bool = False
    value_head: bool = False
    """A win/draw/loss head on the final hidden state (off in the paper's model)."""

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ModelConfigError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ModelConfigError(f"{name} must be positive")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GPTConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ModelConfigError(f"unknown model setting(s): {', '.join(sorted(unknown))}")
        return cls(**data)


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (PyTorch's has no ``bias=False`` on older versions)."""

    def __init__(self, ndim: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.dropout = config.dropout

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        shape = (b, t, self.n_head, c // self.n_head)
        return (q.view(shape).transpose(1, 2), k.view(shape).transpose(1, 2), v.view(shape).transpose(1, 2))

    def _merge(self, y: torch.Tensor) -> torch.Tensor:
        b, _, t, _ = y.shape
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(b, t, -1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(x)
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
        )
        return self._merge(y)

    def forward_cached(
        self, x: torch.Tensor, bias_past: torch.Tensor, bias_new: torch.Tensor, past_k: torch.Tensor,
        past_v: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Attend from the new symbols to the cached ones and to themselves.

        ``bias_past`` (B, 1, T, P) and ``bias_new`` (B, 1, T, T) are additive masks (0 where attention is
        allowed, -inf elsewhere); ``past_k`` / ``past_v`` are (B, n_head, P, head_dim). The scores over
        the past and over the new symbols are computed apart and softmaxed together, so the cache is
        never concatenated (no copy of it per move). Returns the output and the new symbols' keys and
        values only.
        """
        q, k, v = self._heads(x)
        q = q * (1.0 / math.sqrt(q.shape[-1]))
        n_past = past_k.shape[2]
        scores = torch.cat([q @ past_k.transpose(-1, -2) + bias_past, q @ k.transpose(-1, -2) + bias_new], -1)
        weights = F.softmax(scores, dim=-1)
        y = weights[..., :n_past] @ past_v + weights[..., n_past:] @ v
        return self._merge(y), k, v


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))

    def forward_cached(
        self, x: torch.Tensor, bias_past: torch.Tensor, bias_new: torch.Tensor, past_k: torch.Tensor,
        past_v: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a, k, v = self.attn.forward_cached(self.ln_1(x), bias_past, bias_new, past_k, past_v)
        x = x + a
        return x + self.mlp(self.ln_2(x)), k, v


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied, as in nanoGPT
        self.value_head = nn.Linear(config.n_embd, 3) if config.value_head else None
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """Final hidden states (after ln_f) for windows of token ids, causal attention."""
        t = idx.size(1)
        if t > self.config.block_size:
            raise ValueError(f"sequence of length {t} is longer than block_size {self.config.block_size}")
        pos = torch.arange(t, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        return self.transformer.ln_f(x)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits = self.lm_head(self.hidden(idx))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def forward_with_value(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Next-symbol logits (B, T, vocab) and win/draw/loss logits (B, T, 3) for whole windows.

        The WDL logits are None without a value head. Class order: win, draw, loss for the side to move
        after each symbol (see ``transcend.training.windows``), as the engine reads ``wdl_logits``.
        """
        x = self.hidden(idx)
        return self.lm_head(x), (self.value_head(x) if self.value_head is not None else None)

    def forward_cached(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor,
        attn_mask: torch.Tensor,
        past_keys: Sequence[torch.Tensor],
        past_values: Sequence[torch.Tensor],
    ) -> tuple[torch.Tensor, ...]:
        """One inference step on top of a KV cache: the forward that the ONNX export traces and the
        PyTorch policy runs.

        tokens, positions: (B, T) int64, with explicit positions so that the legal moves can be fed as
        a prefix tree (each node at its depth after the prompt); attn_mask: (B, T, P+T) bool, True where
        attention is allowed; past_keys / past_values: one (B, n_head, P, head_dim) tensor per layer (a
        stacked (n_layer, ...) tensor will do). Returns logits (B, T, vocab), the new symbols' keys and
        values (n_layer, B, n_head, T, head_dim; the caller appends them to its cache) and, with a value
        head, WDL logits (B, T, 3).
        """
        tr = self.transformer
        x = tr.wte(tokens) + tr.wpe(positions)
        n_past = past_keys[0].shape[2]
        # One additive mask for all layers, split into its past and new columns.
        bias = torch.zeros(attn_mask.shape, dtype=x.dtype, device=x.device)
        bias = bias.masked_fill(~attn_mask, float("-inf")).unsqueeze(1)
        bias_past, bias_new = bias[..., :n_past], bias[..., n_past:]
        keys, values = [], []
        for block, past_k, past_v in zip(tr.h, past_keys, past_values):
            x, k, v = block.forward_cached(x, bias_past, bias_new, past_k, past_v)
            keys.append(k)
            values.append(v)
        x = tr.ln_f(x)
        out = (self.lm_head(x), torch.stack(keys), torch.stack(values))
        if self.value_head is not None:
            out = out + (self.value_head(x),)
        return out
