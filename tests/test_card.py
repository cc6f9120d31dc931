"""The model card: built by export from a real run on synth data, read back by `transcend info`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from transcend.card import expert_strength_key, merge, checkpoint_step, run_card, synth_settings
from transcend.inference.runtime import BUNDLED_MODEL, OnnxModel

EXPERTS = ("eps=0.6+stockfish:nodes=1", "eps=0.2+stockfish:nodes=1")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "transcend.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def synth_run(tmp_path_factory, stockfish):
    """A tiny run trained on 12 synth games between two noisy Stockfish experts."""
    from transcend.data import GameFilter, prepare
    from transcend.data.synth import SynthConfig, synth
    from transcend.training import TrainConfig, preset, train

    root = tmp_path_factory.mktemp("card")
    synth(SynthConfig(experts=EXPERTS, games=12, max_plies=40), root / "experts.pgn", progress=False)
    prepare([str(root / "experts.pgn")], root / "data", GameFilter(), val_fraction=0.2, progress=False)
    cfg = TrainConfig(batch_size=2, max_iters=4, warmup_iters=1, lr_decay_iters=4, eval_interval=4, eval_iters=1,
                      checkpoint_interval=4, legal_prompts=2)
    train(root / "data", root / "run", preset("tiny")[0], cfg, progress=False)
    return root


def test_export_writes_the_card_and_info_prints_it(synth_run, tmp_path):
    results = {"results": [{"opponent": "random", "temperature": 0.001, "games": 200, "score": 0.93,
                            "interval": [0.9, 0.96], "command": "transcend tournament ..."}],
               "notes": "a test card"}
    (tmp_path / "card.json").write_text(json.dumps(results))
    out = tmp_path / "m.onnx"
    done = cli("export", str(synth_run / "run"), "-o", str(out), "--card", str(tmp_path / "card.json"))
    assert done.returncode == 0, done.stderr

    card = OnnxModel(out, provider="cpu").info.card
    assert card["format"] == 1
    assert card["data"]["experts"] == [EXPERTS[1], EXPERTS[0]]  # less noise first
    assert card["data"]["max_plies"] == 40
    assert sum(card["data"]["games"].values()) == 12
    assert card["training"]["steps"] == 4 and card["training"]["tokens"] == 4 * 2 * 512
    assert card["training"]["val_loss"] > 0 and "legal_move_rate" in card["training"]
    assert card["model"]["parameters"] > 0 and card["model"]["config"]["n_layer"] == 2
    assert card["results"] == results["results"] and card["notes"] == "a test card"

    shown = cli("info", str(out), "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["experts"] == [EXPERTS[1], EXPERTS[0]] and data["results"][0]["games"] == 200
    text = cli("info", str(out))
    assert "expert 1: eps=0.2+stockfish:nodes=1" in text.stdout
    assert "vs random at T=0.001: 93.0% [90.0%, 96.0%] over 200 games" in text.stdout


def test_info_and_policy_default_to_the_bundled_model():
    shown = cli("info", "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["path"] == str(BUNDLED_MODEL) and isinstance(data["experts"], list)
    assert data["model"]["config"]["n_layer"] >= 1
    ranked = cli("policy", "--moves", "e2e4", "--json")
    assert ranked.returncode == 0, ranked.stderr
    assert len(json.loads(ranked.stdout)) == 20


@pytest.mark.parametrize("content, message", [("[1, 2]", "a card is one JSON object"), ("{", "not valid JSON")])
def test_a_bad_card_file_is_a_one_line_error(synth_run, tmp_path, content, message):
    (tmp_path / "card.json").write_text(content)
    done = cli("export", str(synth_run / "run"), "-o", str(tmp_path / "m.onnx"), "--card", str(tmp_path / "card.json"))
    assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_info_of_a_file_that_is_not_a_model_is_a_one_line_error(tmp_path):
    (tmp_path / "x.onnx").write_bytes(b"not onnx")
    done = cli("info", str(tmp_path / "x.onnx"))
    assert done.returncode == 1 and "Traceback" not in done.stderr and done.stderr.count("\n") == 1


def test_card_helpers(tmp_path):
    assert sorted(["eps=0.5+x", "x", "eps=0.1+x"], key=expert_strength_key) == ["x", "eps=0.1+x", "eps=0.5+x"]
    assert merge({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"b": 3}, "d": [1]}) == {"a": {"b": 3, "c": 2}, "d": [1]}
    (tmp_path / "plain.pgn").write_text('[Event "x"]\n\n1. e4 *\n')
    assert synth_settings(tmp_path / "plain.pgn") is None
    assert synth_settings(tmp_path / "missing.pgn") is None


def test_the_card_of_a_live_run_describes_its_checkpointed_weights(synth_run, tmp_path):
    """A run still training has logged steps past its last checkpoint: the card is the weights'."""
    run = tmp_path / "run"
    shutil.copytree(synth_run / "run", run)
    assert checkpoint_step(run) == 4
    with open(run / "log.jsonl", "a") as log:
        log.write(json.dumps({"step": 5, "loss": 1.0}) + "\n")
        log.write(json.dumps({"step": 6, "loss": 1.0, "val_loss": 0.5, "legal_move_rate": 1.0}) + "\n")
    training = run_card(run)["training"]
    assert training["steps"] == 4 and training["val_loss"] != 0.5
