"""Training: windows, value targets, configs, exact resume, kills, DDP, the value head end to end."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import chess
import numpy as np
import pytest
import torch

from conftest import write_random_pgn
from transcend.data import INDEX_DTYPE, GameFilter, prepare
from transcend.model import GPTConfig
from transcend.training import PRESETS, TrainConfig, TrainingError, preset, resolve_config, train
from transcend.training.checkpoint import read_log
from transcend.training.config import parse_override
from transcend.training.windows import _scan_game_starts, load_split_games, sample_batch, value_targets
from transcend.transcript import GAME_START_ID, encode, next_move_prefix, sans_from_transcript

REPO = Path(__file__).resolve().parents[1]
MICRO = GPTConfig(block_size=64, n_layer=1, n_head=2, n_embd=32)
"""A model small enough that a training step takes milliseconds."""
FAST = TrainConfig(batch_size=4, max_iters=8, warmup_iters=2, lr_decay_iters=8, eval_interval=4, eval_iters=2,
                   log_interval=1, checkpoint_interval=3, legal_prompts=6)
MICRO_FLAGS = ["--set", "block_size=64", "--set", "n_layer=1", "--set", "n_head=2", "--set", "n_embd=32",
               "--batch-size", "4", "--set", "warmup_iters=2", "--set", "lr_decay_iters=8", "--set", "eval_interval=4",
               "--set", "eval_iters=2", "--set", "log_interval=1", "--set", "legal_prompts=6", "--threads", "1",
               "--device", "cpu", "--quiet"]
DETERMINISTIC = ("step", "loss", "lr", "val_loss", "legal_move_rate", "train_value_loss", "value_loss", "value_acc")


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_game_index(data_dir: Path, split: str, result_of) -> np.ndarray:
    """The per-game index that `data prepare` writes, with results from ``result_of(game_number)``."""
    tokens = np.fromfile(data_dir / f"{split}.bin", dtype=np.uint8)
    starts = _scan_game_starts(tokens)
    index = np.zeros(starts.size, dtype=INDEX_DTYPE)
    index["start"] = starts
    index["length"] = np.diff(np.append(starts, tokens.size))
    index["result"] = [result_of(i) for i in range(starts.size)]
    np.save(data_dir / f"{split}_games.npy", index)
    return index


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """150 random games; every game 'won by White' except every 7th, whose result is unknown."""
    root = tmp_path_factory.mktemp("train-data")
    prepare([str(write_random_pgn(root / "g.pgn", 150, seed=5))], root / "data", GameFilter(), val_fraction=0.15,
            progress=False)
    for split in ("train", "val"):
        write_game_index(root / "data", split, lambda i: -1 if i % 7 == 3 else 0)
    return root / "data"


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "transcend.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def deterministic(records: list[dict]) -> list[dict]:
    return [{k: r[k] for k in DETERMINISTIC if k in r} for r in records]


# ------------------------------------------------------------------------------------------------
# Windows and value targets


def test_windows_start_at_a_game_and_targets_are_shifted_by_one(dataset):
    split = load_split_games(dataset, "train", need_results=True)
    batch = sample_batch(split, 16, 64, np.random.default_rng(0), with_values=True)
    assert batch.x.shape == batch.y.shape == batch.value.shape == (16, 64)
    assert (batch.x[:, 0] == GAME_START_ID).all()
    assert (batch.x[:, 1:] == batch.y[:, :-1]).all()
    assert set(np.unique(batch.value)) <= {-1, 0, 2}


def test_value_targets_are_for_the_side_to_move_and_follow_game_boundaries():
    text = ";1.e4 e5 2.Nf3;1.d4 d5"
    windows = encode(text).astype(np.int64)[None]
    results = np.array([0, 2, 1], dtype=np.int8)  # game 0: White won; game 1: Black won
    got = value_targets(windows, np.array([0]), results)[0]
    white_won = {"w": 0, "b": 2}  # white to move: win; black to move: loss
    black_won = {"w": 2, "b": 0}
    expected = ([white_won["w"]] * len(";1.e4") + [white_won["b"]] * len(" e5") + [white_won["w"]] * len(" 2.Nf3")
                + [black_won["w"]] * len(";1.d4") + [black_won["b"]] * len(" d5"))
    assert got.tolist() == expected
    unknown = value_targets(windows, np.array([0]), np.array([-1, 1], dtype=np.int8))[0]
    assert unknown.tolist() == [-1] * len(";1.e4 e5 2.Nf3") + [1] * len(";1.d4 d5")


@pytest.mark.parametrize("white_result", [0, 1, 2])
def test_value_target_at_the_engine_prompt_is_the_result_for_the_side_to_move(white_result):
    """The engine reads wdl_logits at the last symbol of next_move_prefix(): train exactly that."""
    rng = random.Random(white_result)
    board = chess.Board()
    sans = []
    for _ in range(30):
        move = rng.choice(list(board.legal_moves))
        sans.append(board.san(move))
        board.push(move)
    full = encode(next_move_prefix(sans)).astype(np.int64)[None]
    targets = value_targets(full, np.array([0]), np.array([white_result], dtype=np.int8))[0]
    for ply in range(len(sans)):
        last = len(next_move_prefix(sans[:ply])) - 1
        side_to_move_white = ply % 2 == 0
        expected = white_result if side_to_move_white else 2 - white_result
        assert targets[last] == expected, (ply, next_move_prefix(sans[:ply]))


# ------------------------------------------------------------------------------------------------
# Configs


def test_config_files_in_configs_equal_the_presets():
    for name in PRESETS:
        assert resolve_config(config_file=REPO / "configs" / f"{name}.toml") == preset(name), name


def test_paper_preset_is_the_papers_recipe():
    model, cfg = preset("paper-50m")
    assert (model.n_layer, model.n_head, model.n_embd, model.block_size, model.bias, model.value_head) == (
        16, 8, 512, 1023, False, False)
    assert (cfg.beta1, cfg.beta2, cfg.weight_decay, cfg.grad_clip) == (0.9, 0.95, 0.1, 1.0)
    assert (cfg.learning_rate, cfg.min_lr, cfg.warmup_iters, cfg.lr_decay_iters) == (3e-4, 3e-5, 2000, 4_000_000)
    assert (cfg.batch_size, cfg.grad_accum, cfg.seed, cfg.dtype, cfg.compile) == (125, 4, 1337, "auto", True)


def test_config_file_with_preset_and_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('preset = "small"\n[model]\nvalue_head = true\n[training]\nbatch_size = 7\nlearning_rate = 1\n')
    model, cfg = resolve_config(config_file=path, overrides=dict([parse_override("n_layer=3"),
                                                                  parse_override("dtype=bfloat16")]))
    assert model == dataclasses.replace(preset("small")[0], value_head=True, n_layer=3)
    assert (cfg.batch_size, cfg.learning_rate, cfg.dtype) == (7, 1.0, "bfloat16")
    json_path = tmp_path / "c.json"
    json_path.write_text(json.dumps({"model": {"n_layer": 3}, "training": {"max_iters": 4e6}}))
    model, cfg = resolve_config(config_file=json_path)
    assert model.n_layer == 3 and cfg.max_iters == 4_000_000


@pytest.mark.parametrize("content, overrides, message", [
    ("[training]\nbatch_size = 'x'\n", {}, "batch_size must be int"),
    ("[training]\nbatchsize = 3\n", {}, "unknown training setting"),
    ("[modle]\n", {}, "unknown section"),
    ("[model\n", {}, "not valid TOML"),
    ("", {"n_layers": 3}, "unknown setting 'n_layers'"),
    ("", {"n_embd": 65}, "multiple of n_head"),
    ("", {"dtype": "float16"}, "dtype must be one of"),
    ("", {"max_iters": 0}, "max_iters must be positive"),
])
def test_bad_configs_are_one_line_errors(tmp_path, content, overrides, message):
    path = tmp_path / "c.toml"
    path.write_text(content)
    with pytest.raises(TrainingError, match=message) as err:
        resolve_config(config_file=path, overrides=overrides)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------------------------
# Bad input


def test_bad_datasets_and_resume_targets_are_one_line_errors(dataset, tmp_path):
    def error(data_dir, model=MICRO, resume=False, out=tmp_path / "run"):
        with pytest.raises(TrainingError) as err:
            train(data_dir, out, model, FAST, resume=resume, progress=False)
        assert "\n" not in str(err.value)
        return str(err.value)

    assert "no such dataset directory" in error(tmp_path / "missing")
    broken = tmp_path / "broken"
    broken.mkdir()
    assert "missing meta.json" in error(broken)
    (broken / "meta.json").write_text((dataset / "meta.json").read_text())
    assert "missing train.bin" in error(broken)
    (broken / "train.bin").write_bytes((dataset / "train.bin").read_bytes())
    assert "missing val.bin" in error(broken)
    (broken / "val.bin").write_bytes((dataset / "val.bin").read_bytes())
    assert "needs game results, but train_games.npy is missing" in error(broken, dataclasses.replace(MICRO, value_head=True))
    (broken / "train_games.npy").write_bytes((dataset / "val_games.npy").read_bytes())
    assert "does not match train.bin" in error(broken, dataclasses.replace(MICRO, value_head=True))
    assert "vocab_size 40" in error(dataset, dataclasses.replace(MICRO, vocab_size=40))
    (broken / "train.bin").write_bytes(bytes([GAME_START_ID, 1, 40, 2]))
    (broken / "train_games.npy").unlink()
    assert "symbol id 40, outside the 32-symbol vocabulary" in error(broken)
    meta = json.loads((dataset / "meta.json").read_text())
    (broken / "meta.json").write_text(json.dumps({**meta, "vocab": meta["vocab"][::-1]}))
    assert "vocabulary" in error(broken)
    assert "nothing to resume" in error(dataset, resume=True)

    train(dataset, tmp_path / "run", MICRO, dataclasses.replace(FAST, max_iters=1), progress=False)
    assert "another shape (n_layer 1 -> 2)" in error(dataset, dataclasses.replace(MICRO, n_layer=2), resume=True)
    assert "already holds a training run" in error(dataset)


def test_cli_reports_bad_input_in_one_line(dataset, tmp_path):
    result = run_cli("train", "--data", str(dataset), "--out", str(tmp_path / "r"), "--set", "n_embd=65", "--quiet")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("transcend: error: bad model config: n_embd (65) must be a multiple of n_head")


# ------------------------------------------------------------------------------------------------
# Resume, kills, interrupts


def test_resumed_run_repeats_the_uninterrupted_one(dataset, tmp_path):
    model = dataclasses.replace(MICRO, value_head=True)
    whole = tmp_path / "whole"
    train(dataset, whole, model, FAST, progress=False)
    parts = tmp_path / "parts"
    train(dataset, parts, model, dataclasses.replace(FAST, max_iters=5), progress=False)
    train(dataset, parts, model, FAST, resume=True, progress=False)

    a, b = deterministic(read_log(whole)), deterministic(read_log(parts))
    assert [r["step"] for r in a] == list(range(1, 9))
    assert {"val_loss", "legal_move_rate", "value_loss", "value_acc", "train_value_loss"} <= set(a[-1])
    assert [r for r in b if r["step"] != 5] == [r for r in a if r["step"] != 5]  # step 5 of `parts` also evaluated
    assert (whole / "model.safetensors").read_bytes() == (parts / "model.safetensors").read_bytes()


@pytest.mark.slow
def test_sigkill_at_any_moment_never_corrupts_and_resume_continues(dataset, tmp_path):
    reference = tmp_path / "reference"
    max_iters = 40
    cfg = dataclasses.replace(FAST, max_iters=max_iters, lr_decay_iters=max_iters, eval_interval=8,
                              checkpoint_interval=100)
    train(dataset, reference, MICRO, cfg, progress=False)  # checkpoints do not change the run

    run = tmp_path / "killed"
    args = ["train", "--data", str(dataset), "--out", str(run), *MICRO_FLAGS, "--max-iters", str(max_iters),
            "--set", f"lr_decay_iters={max_iters}", "--set", "eval_interval=8", "--set", "checkpoint_interval=1"]
    rng = random.Random(0)
    kills = 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for attempt in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "transcend.cli", *args, *(["--resume"] if attempt else [])],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        # Kill a few steps after this run's first one (a micro step takes milliseconds, so the kill must be
        # aimed at a step, not at a wall-clock moment), and at a random instant within that step: mid-step,
        # mid-checkpoint or mid-log.
        target = (read_log(run)[-1]["step"] if read_log(run) else 0) + rng.randint(2, 9)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            log = read_log(run)
            if log and log[-1]["step"] >= target:
                break
            time.sleep(0.001)
        time.sleep(rng.uniform(0.0, 0.008))
        if proc.poll() is not None:
            assert proc.returncode == 0, proc.stderr.read()
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        kills += 1
        state = torch.load(run / "checkpoint.pt", weights_only=True)  # never torn
        from transcend.model import load_model

        load_model(run)  # the weights file is whole too
        logged = read_log(run)[-1]["step"]
        assert logged - 1 <= state["step"] <= logged  # at most the step in flight is lost
    else:
        result = run_cli(*args, "--resume")
        assert result.returncode == 0, result.stderr
    if kills < 2:  # the process finished too fast to be killed twice; make sure this test tests something
        pytest.fail(f"only {kills} kill(s) landed")
    assert deterministic(read_log(run)) == deterministic(read_log(reference))
    assert (run / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes()


def test_sigint_stops_after_the_step_with_a_checkpoint(dataset, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "transcend.cli", "train", "--data", str(dataset), "--out", str(run),
                             *MICRO_FLAGS, "--max-iters", "100000", "--set", "checkpoint_interval=100000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 60
    while not read_log(run) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == read_log(run)[-1]["step"] > 0


# ------------------------------------------------------------------------------------------------
# DDP


@pytest.mark.slow
def test_ddp_with_two_gloo_processes_matches_one_process(dataset, tmp_path):
    cfg = dataclasses.replace(FAST, max_iters=4, grad_accum=2, eval_interval=2, checkpoint_interval=4)
    single = tmp_path / "single"
    train(dataset, single, MICRO, cfg, progress=False)

    ddp = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "transcend.cli", "train", "--data", str(dataset), "--out", str(ddp), *MICRO_FLAGS,
           "--max-iters", "4", "--grad-accum", "2", "--set", "eval_interval=2", "--set", "checkpoint_interval=4"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = deterministic(read_log(single)), deterministic(read_log(ddp))
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for key in x:
            assert x[key] == pytest.approx(y[key], rel=1e-4, abs=1e-5), (x["step"], key)


# ------------------------------------------------------------------------------------------------
# Legal-move rate, value head end to end


def test_legal_move_rate_batches_exactly_like_one_prompt_at_a_time(dataset):
    import contextlib

    from transcend.model import GPT
    from transcend.sampling import parse_move, sample_move_text
    from transcend.training.evaluate import Reducer, legal_move_rate, legal_prompts

    torch.manual_seed(0)
    model = GPT(MICRO).eval()
    split = load_split_games(dataset, "val", need_results=False)
    prompts = legal_prompts(split, 12, MICRO.block_size, seed=3)
    assert len(prompts) == 12 and all(p.prompt.startswith(";1.") for p in prompts)
    assert all(len(p.prompt) + 10 <= MICRO.block_size for p in prompts)
    for p in prompts:  # each prompt is a real prefix of a held-out game, and its FEN the position it leads to
        board = chess.Board()
        for san in sans_from_transcript(p.prompt):
            board.push_san(san)
        assert board.fen() == p.fen

    def one(ids):
        with torch.no_grad():
            return model(torch.from_numpy(ids)[None])[0][0, -1].numpy()

    legal = sum(parse_move(chess.Board(p.fen), sample_move_text(one, p.prompt, 1.0, np.random.default_rng([3, 2, i])))
                is not None for i, p in enumerate(prompts))
    rate = legal_move_rate(model, prompts, 1.0, 3, torch.device("cpu"), contextlib.nullcontext(), Reducer())
    assert rate == legal / len(prompts)


@pytest.mark.slow
def test_value_head_learns_and_the_engine_reads_it_for_the_side_to_move(dataset, tmp_path):
    """All games are won by White: the head must say 'win' with White to move and 'loss' with Black."""
    from transcend.inference.policy import MovePolicy
    from transcend.inference.runtime import OnnxModel
    from transcend.export import export

    model = GPTConfig(block_size=128, n_layer=2, n_head=2, n_embd=32, value_head=True)
    cfg = TrainConfig(batch_size=8, max_iters=300, learning_rate=3e-3, min_lr=3e-4, warmup_iters=10,
                      lr_decay_iters=300, eval_interval=300, eval_iters=4, log_interval=50, checkpoint_interval=300,
                      legal_prompts=16, value_loss_weight=1.0)
    run = tmp_path / "run"
    record = train(dataset, run, model, cfg, progress=False)
    first = read_log(run)[0]
    assert record["value_acc"] > 0.9
    assert record["value_loss"] < 0.4 < first["train_value_loss"]

    onnx = tmp_path / "v.onnx"
    export(run, onnx)
    policy = MovePolicy(OnnxModel(onnx, provider="cpu"))
    rng = random.Random(1)
    board = chess.Board()
    for _ in range(12):
        wdl = policy.score_legal_moves(board).wdl
        assert wdl is not None and wdl.sum() == pytest.approx(1.0, abs=1e-5)
        expected = 0 if board.turn == chess.WHITE else 2  # White always wins
        assert int(np.argmax(wdl)) == expected, (board.fen(), wdl)
        board.push(rng.choice(list(board.legal_moves)))


def test_log_records_throughput_and_mfu(dataset, tmp_path):
    from transcend.model import GPT
    from transcend.training.evaluate import flops_per_token

    train(dataset, tmp_path / "run", MICRO, dataclasses.replace(FAST, max_iters=2), progress=False)
    log = read_log(tmp_path / "run")
    n = GPT(MICRO).num_params(non_embedding=True)
    for r in log:
        assert r["tokens_per_s"] > 0
        assert r["mfu"] == pytest.approx(r["tokens_per_s"] * flops_per_token(MICRO, n) / 312e12, rel=1e-2)
    assert flops_per_token(MICRO, n) == 6 * n + 12 * 1 * 2 * 16 * 64
