"""Export: run directory and nanoGPT ckpt.pt sources, the ONNX format, --verify, int8 and fp16."""

from __future__ import annotations

import json
import subprocess
import sys

import chess
import numpy as np
import pytest
import torch

from transcend.export import export_onnx, packed_transcript, verification_boards, verify
from transcend.inference import contract
from transcend.inference.contract import FORMAT_VERSION
from transcend.inference.policy import MovePolicy, build_move_tree, game_prompt, log_softmax
from transcend.inference.runtime import ModelError, OnnxModel
from transcend.model import GPT, GPTConfig
from transcend.transcript import encode

CONFIG = GPTConfig(block_size=160, n_layer=2, n_head=2, n_embd=32)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "transcend.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def small_model() -> GPT:
    torch.manual_seed(1)
    return GPT(CONFIG).eval()


@pytest.fixture(scope="module")
def nanogpt_ckpt(small_model, tmp_path_factory):
    """A checkpoint laid out as the paper's: ``model_args``, ``model`` with ``_orig_mod.`` keys."""
    path = tmp_path_factory.mktemp("ckpt") / "ckpt.pt"
    state = {f"_orig_mod.{k}": v.clone() for k, v in small_model.state_dict().items()}
    args = dict(n_layer=2, n_head=2, n_embd=32, block_size=160, bias=False, vocab_size=32, dropout=0.0)
    torch.save({"model": state, "model_args": args, "iter_num": 100, "config": {}}, path)
    return path


def test_export_of_a_nanogpt_checkpoint(nanogpt_ckpt, tmp_path):
    out = tmp_path / "m.onnx"
    result = run_cli("export", str(nanogpt_ckpt), "-o", str(out))
    assert result.returncode == 0, result.stderr
    model = OnnxModel(out, provider="cpu")
    assert model.info.format_version == FORMAT_VERSION and model.info.quantization == "none"
    assert model.info.block_size == 160 and model.info.n_layer == 2
    meta = model.session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["transcend.model_config"])["n_embd"] == 32 and meta["transcend.source"] == "ckpt.pt"
    names = [i.name for i in model.session.get_inputs()]
    assert names == ["tokens", "positions", "attn_mask", "past_key_0", "past_key_1", "past_value_0", "past_value_1"]
    assert names == contract.input_names(2)
    assert [o.name for o in model.session.get_outputs()] == contract.output_names(False)


def test_the_runtime_finds_its_inputs_by_name(small_model, tmp_path):
    """The graph's inputs in another order give the same step; a missing one is a ModelError."""
    import onnx

    path, shuffled, broken = tmp_path / "m.onnx", tmp_path / "shuffled.onnx", tmp_path / "broken.onnx"
    export_onnx(small_model, path)
    proto = onnx.load(str(path))
    inputs = list(proto.graph.input)
    del proto.graph.input[:]
    proto.graph.input.extend(reversed(inputs))
    onnx.save(proto, str(shuffled))
    board = chess.Board()
    for san in ("e4", "e5", "Nf3"):
        board.push_san(san)
    a, b = (MovePolicy(OnnxModel(p, provider="cpu")).score_legal_moves(board) for p in (path, shuffled))
    assert np.array_equal(a.log_probs, b.log_probs)
    renamed = {contract.past_value(1): "renamed"}
    for value in proto.graph.input:
        value.name = renamed.get(value.name, value.name)
    for node in proto.graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
    onnx.save(proto, str(broken))
    with pytest.raises(ModelError, match="lacks the input.* past_value_1"):
        OnnxModel(broken, provider="cpu")


def test_export_of_a_run_directory(small_model, tmp_path):
    from transcend.model import save_weights

    run = tmp_path / "run"
    run.mkdir()
    save_weights(small_model, run / "model.safetensors")
    (run / "config.json").write_text(json.dumps({"model": CONFIG.to_dict()}))
    out = tmp_path / "run.onnx"
    result = run_cli("export", str(run), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert MovePolicy(OnnxModel(out, provider="cpu")).score_legal_moves(chess.Board()).moves


def test_verify_matches_pytorch_closely(small_model, tmp_path):
    out = tmp_path / "fp32.onnx"
    export_onnx(small_model, out)
    result = verify(small_model, out, threads=1)
    assert result.ok and result.max_logit_diff < 1e-4 and result.max_move_logprob_diff < 1e-4
    assert result.top_move_agreement == 1.0 and result.positions == len(verification_boards())


@pytest.mark.parametrize("quantize", ["int8", "fp16"])
def test_quantized_exports_stay_close(small_model, tmp_path, quantize):
    out = tmp_path / f"{quantize}.onnx"
    export_onnx(small_model, out, quantize=quantize)
    model = OnnxModel(out, provider="cpu")
    assert model.info.quantization == quantize
    assert model.cache_dtype == (np.float16 if quantize == "fp16" else np.float32)
    assert out.stat().st_size < 0.7 * _fp32_size(small_model, tmp_path)
    result = verify(small_model, out, threads=1)
    assert result.ok and 0 < result.max_logit_diff
    assert result.top_move_agreement >= 0.8


def _fp32_size(model, tmp_path) -> int:
    path = tmp_path / "reference.onnx"
    export_onnx(model, path)
    return path.stat().st_size


def test_verify_fails_past_the_tolerance(nanogpt_ckpt, tmp_path):
    result = run_cli("export", str(nanogpt_ckpt), "-o", str(tmp_path / "q.onnx"), "--quantize", "int8",
                     "--verify", "--tolerance", "0")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "largest logit difference" in result.stdout and "same most probable move" in result.stdout
    assert "verification failed" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_packed_verification_transcript_is_real_games():
    ids = packed_transcript(300)
    from transcend.transcript import decode

    text = decode(ids)
    assert len(ids) == 300 and text.startswith(";1.e4 e5 2.Nf3 d6 3.d4 Bg4") and text.count(";") >= 2


def _game_of(symbols: int, seed: int = 3) -> tuple[chess.Board, str]:
    """A random legal game whose transcript up to the next move has about ``symbols`` symbols."""
    rng = np.random.default_rng(seed)
    while True:
        board = chess.Board()
        while not board.is_game_over():
            prompt = game_prompt(board)
            if len(prompt) >= symbols:
                return board, prompt
            moves = list(board.legal_moves)
            board.push(moves[int(rng.integers(len(moves)))])


def test_the_exported_graph_matches_the_full_forward_over_a_cache_and_a_move_tree(tmp_path):
    """onnxruntime, with its cache built over several steps and the legal moves fed as a prefix tree,
    against ``GPT.forward`` on each whole sequence: a 600-symbol game, random weights, to 1e-4."""
    torch.manual_seed(7)
    model = GPT(GPTConfig(block_size=640, n_layer=2, n_head=2, n_embd=32)).eval()
    out = tmp_path / "m.onnx"
    export_onnx(model, out)
    onnx_model = OnnxModel(out, provider="cpu", threads=1)
    board, prompt = _game_of(600)
    ids = encode(prompt).astype(np.int64)
    assert len(ids) >= 600
    with torch.no_grad():
        full = model(torch.from_numpy(ids)[None])[0][0].numpy()
    keys, values = onnx_model.empty_cache()
    cuts = [0, 150, 400, len(ids) - 1]
    for start, end in zip(cuts, cuts[1:]):  # the cache, step by step
        mask = np.tril(np.ones((end - start, end), dtype=bool), k=start)
        step = onnx_model.step(ids[None, start:end], np.arange(start, end)[None], mask[None], keys, values)
        np.testing.assert_allclose(step.logits[0], full[start:end], atol=1e-4, rtol=0)
        keys = np.concatenate([keys, step.new_keys], axis=3)
        values = np.concatenate([values, step.new_values], axis=3)
    # The last symbol of the prompt, then the legal moves' prefix tree, in one step on top of the cache.
    sans = [board.san(m) for m in board.legal_moves]
    tree = build_move_tree(sans)
    n_past = len(ids) - 1
    n_new = 1 + len(tree.tokens)
    mask = np.zeros((n_new, n_past + n_new), dtype=bool)
    mask[:, : n_past + 1] = True
    mask[1:, n_past + 1 :] = tree.ancestors
    tokens = np.concatenate([ids[-1:], tree.tokens])
    positions = np.concatenate([[n_past], len(ids) + tree.depth])
    step = onnx_model.step(tokens[None], positions[None], mask[None], keys, values)
    np.testing.assert_allclose(step.logits[0, 0], full[-1], atol=1e-4, rtol=0)
    # Each node's logits are those of the whole sequence prompt + the node's SAN prefix.
    node_of = {}
    for san in sans:
        for length in range(1, len(san) + 1):
            node_of.setdefault(san[:length], len(node_of))
    with torch.no_grad():
        for san in sans:
            whole = np.concatenate([ids, encode(san).astype(np.int64)])
            expected = model(torch.from_numpy(whole)[None])[0][0].numpy()
            for length in range(1, len(san) + 1):
                row = 1 + node_of[san[:length]]
                np.testing.assert_allclose(step.logits[0, row], expected[len(ids) + length - 1], atol=1e-4, rtol=0)
    # And the policy's move probabilities (its own cache, fed as a game goes) agree with the full forward.
    policy = MovePolicy(onnx_model)
    replay = chess.Board()
    for ply, move in enumerate(board.move_stack):
        if ply % 40 == 0:
            policy.score_legal_moves(replay)
        replay.push(move)
    scores = policy.score_legal_moves(board)
    assert scores.prompt == prompt
    with torch.no_grad():
        for san, log_prob in zip(scores.sans, scores.log_probs):
            whole = np.concatenate([ids, encode(san + " ").astype(np.int64)])
            logp = log_softmax(model(torch.from_numpy(whole[:-1])[None])[0][0].numpy().astype(np.float64))
            expected = sum(logp[len(ids) - 1 + j, whole[len(ids) + j]] for j in range(len(san) + 1))
            assert abs(log_prob - expected) < 1e-4
