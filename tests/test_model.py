"""The GPT: nanoGPT compatibility, cached inference, checkpoint I/O."""

from __future__ import annotations

import pytest
import torch

from transcend.errors import TranscendError

from transcend.model import GPT, GPTConfig, load_model, load_state, save_weights
from transcend.training import preset


def test_paper_preset_has_the_papers_parameter_count():
    cfg = preset("paper-50m")[0]
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, cfg.bias) == (16, 8, 512, 1023, False)
    model = GPT(cfg)
    assert model.num_params() == 50_888_704
    assert model.lm_head.weight is model.transformer.wte.weight


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(TranscendError, match="unknown preset 'huge'"):
        preset("huge")


def test_nanogpt_state_dict_with_orig_mod_prefix_loads(tmp_path):
    cfg = GPTConfig(block_size=64, n_layer=2, n_head=2, n_embd=32)
    source = GPT(cfg)
    # The layout of nanoGPT's torch.compile'd checkpoints: every key prefixed, plus an old mask buffer.
    state = {f"_orig_mod.{k}": v.clone() for k, v in source.state_dict().items()}
    state["_orig_mod.transformer.h.0.attn.bias"] = torch.tril(torch.ones(1, 1, 64, 64))
    ckpt = {"model": state, "model_args": dict(n_layer=2, n_head=2, n_embd=32, block_size=64, bias=False,
                                               vocab_size=32, dropout=0.0), "iter_num": 5}
    path = tmp_path / "ckpt.pt"
    torch.save(ckpt, path)
    loaded = load_model(path)
    x = torch.randint(0, 32, (2, 17))
    assert torch.equal(loaded(x)[0], source.eval()(x)[0])
    names = set(loaded.state_dict())
    assert {"transformer.wte.weight", "transformer.h.0.attn.c_attn.weight", "lm_head.weight"} <= names


def test_mismatched_weights_are_a_clear_error():
    small = GPT(GPTConfig(block_size=64, n_layer=1, n_head=2, n_embd=32))
    other = GPT(GPTConfig(block_size=64, n_layer=1, n_head=2, n_embd=64))
    with pytest.raises(TranscendError, match="has shape"):
        load_state(small, other.state_dict())


def test_cached_forward_matches_full_forward():
    torch.manual_seed(0)
    model = GPT(preset("tiny")[0]).eval()
    cfg = model.config
    x = torch.randint(0, 32, (1, 40))
    full, _ = model(x)
    empty = torch.zeros(cfg.n_layer, 1, cfg.n_head, 0, cfg.head_dim)
    mask = torch.ones(40, 40, dtype=torch.bool).tril()
    with torch.no_grad():
        a, k, v = model.forward_cached(x[:, :25], torch.arange(25)[None], mask[None, :25, :25], empty, empty)
        assert k.shape == (cfg.n_layer, 1, cfg.n_head, 25, cfg.head_dim)  # the new symbols' keys only
        b, k2, _ = model.forward_cached(x[:, 25:], torch.arange(25, 40)[None], mask[None, 25:], k, v)
    assert k2.shape == (cfg.n_layer, 1, cfg.n_head, 15, cfg.head_dim)
    torch.testing.assert_close(torch.cat([a, b], 1), full, atol=1e-5, rtol=1e-4)


def test_safetensors_round_trip(tmp_path):
    model = GPT(GPTConfig(block_size=32, n_layer=1, n_head=2, n_embd=16))
    path = tmp_path / "w.safetensors"
    save_weights(model, path)
    again = load_model(path)
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
