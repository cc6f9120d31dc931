"""A model's card: where an exported model came from and how it measured, kept inside the ONNX file.

The card is one JSON object in the ONNX metadata property ``transcend.card``. ``export`` builds it
from the run directory (its config and ``log.jsonl``) and the dataset the run trained on (its
``meta.json``, and the ``SynthSettings`` tag of a synth PGN it was prepared from, which names the
experts), then merges a JSON file given with ``--card`` over it (measured results, notes, an explicit
expert order). ``transcend info`` prints it. Fields (all optional but ``format``):

* ``format``: 1.
* ``model``: ``parameters`` and the model config.
* ``data``: ``experts`` (expert specs, strongest first), ``games`` and ``symbols`` (per split),
  ``sources`` (file names only) and ``max_plies`` / ``random_plies`` of synth data.
* ``training``: ``steps``, ``tokens``, ``val_loss``, ``value_acc``, ``legal_move_rate`` (the last
  evaluation in the log), ``config`` (the training settings).
* ``results``: a list of measured results, each ``{"opponent", "temperature", "games", "score",
  "interval", "command"}`` (see docs/default-model.md).
* ``notes``: free text.

``transcend info`` reads the card through onnxruntime's metadata, never importing torch or onnx.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .errors import TranscendError
from .files import read_jsonl

CARD_FORMAT = 1
_SETTINGS_TAG = re.compile(rb'\[SynthSettings "([^"]*)"\]')


class CardError(TranscendError):
    """A card file that is not a JSON object, or a run directory that cannot be described."""


def expert_strength_key(spec: str) -> tuple[float, str]:
    """Sort key putting stronger experts first when nothing was measured: less noise first.

    Only the noise is compared (``eps=0.3+X`` before ``eps=0.5+X``); specs without noise count as
    eps 0. A card whose experts were measured lists them in measured order instead (``--card``).
    """
    match = re.match(r"eps=([0-9.]+)\+", spec)
    return (float(match.group(1)) if match else 0.0, spec)


def synth_settings(pgn: Path) -> dict[str, Any] | None:
    """The ``SynthSettings`` tag of the first game of a synth PGN, parsed; None for other files."""
    try:
        with open(pgn, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return None
    match = _SETTINGS_TAG.search(head)
    if not match:
        return None
    settings: dict[str, Any] = {}
    for item in match.group(1).decode("utf-8", "replace").split(" "):
        key, _, value = item.partition("=")
        settings[key] = value
    experts = [e for e in settings.get("experts", "").split("|") if e]
    out: dict[str, Any] = {"experts": experts}
    for key in ("random_plies", "max_plies", "seed"):
        if settings.get(key, "").isdigit():
            out[key] = int(settings[key])
    return out


def data_card(data_dir: Path) -> dict[str, Any]:
    """What a dataset's ``meta.json`` and its synth sources say about it (empty when unreadable)."""
    try:
        meta = json.loads((Path(data_dir) / "meta.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(meta, dict):
        return {}
    out: dict[str, Any] = {k: meta[k] for k in ("games", "symbols") if k in meta}
    sources = [str(s) for s in meta.get("sources", [])]
    out["sources"] = [Path(s).name for s in sources]
    experts: list[str] = []
    for source in sources:
        settings = synth_settings(Path(source))
        if settings:
            experts += [e for e in settings.pop("experts") if e not in experts]
            out.update(settings)
    if experts:
        out["experts"] = sorted(experts, key=expert_strength_key)
    return out


def checkpoint_step(run_dir: Path) -> int | None:
    """The optimizer step of a run's last checkpoint (None without one), which its weights are from.

    Imports torch, which export has loaded already; ``transcend info`` never calls this. The file is
    memory-mapped, so its weights and optimizer state (about 600 MB for paper-50m) are not read.
    """
    import torch

    try:
        state = torch.load(Path(run_dir) / "checkpoint.pt", map_location="cpu", weights_only=True, mmap=True)
    except (OSError, RuntimeError, ValueError):
        return None
    step = state.get("step") if isinstance(state, dict) else None
    return step if isinstance(step, int) else None


def run_card(run_dir: Path) -> dict[str, Any]:
    """The card of a training run directory: its data, its training settings and last evaluation."""
    run_dir = Path(run_dir)
    card: dict[str, Any] = {"format": CARD_FORMAT}
    try:
        config = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return card
    training = config.get("training", {})
    records = [r for r in read_jsonl(run_dir / "log.jsonl") if isinstance(r, dict)]
    # The weights are those of the last checkpoint; a live run has logged steps past it.
    step = checkpoint_step(run_dir)
    if step is not None:
        records = [r for r in records if r.get("step", 0) <= step]
    evaluated = [r for r in records if "val_loss" in r]
    summary: dict[str, Any] = {}
    if records:
        steps = int(records[-1]["step"]) if step is None else step
        block = int(config.get("model", {}).get("block_size", 0))
        summary["steps"] = steps
        summary["tokens"] = steps * int(training.get("batch_size", 0)) * int(training.get("grad_accum", 1)) * block
    if evaluated:
        last = evaluated[-1]
        summary.update({k: last[k] for k in ("val_loss", "value_acc", "legal_move_rate") if k in last})
    summary["config"] = training
    card["training"] = summary
    if config.get("data"):
        card["data"] = data_card(Path(config["data"]))
    return card


def read_card_file(path: Path) -> dict[str, Any]:
    """A ``--card`` JSON file: one object, merged over the card export builds."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise CardError(f"{path}: cannot read the card ({exc.strerror})") from None
    except ValueError as exc:
        raise CardError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CardError(f"{path}: a card is one JSON object")
    return data


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` over ``base``; nested objects are merged key by key, anything else replaced."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def format_card(card: dict[str, Any], title: str) -> str:
    """The card as text for a terminal."""
    lines = [title]
    model = card.get("model", {})
    if model:
        cfg = model.get("config", {})
        shape = f"{cfg.get('n_layer')} layers, {cfg.get('n_head')} heads, width {cfg.get('n_embd')}" if cfg else ""
        lines.append(f"model: {model.get('parameters', 0):,} parameters{'; ' + shape if shape else ''}"
                     f"{'; value head' if cfg.get('value_head') else ''}")
    data = card.get("data", {})
    if data:
        games, symbols = data.get("games", {}), data.get("symbols", {})
        lines.append(f"data: {sum(games.values()) if isinstance(games, dict) else games} games, "
                     f"{sum(symbols.values()) if isinstance(symbols, dict) else symbols} symbols"
                     + (f" ({', '.join(data['sources'])})" if data.get("sources") else ""))
        for i, expert in enumerate(data.get("experts", []), 1):
            lines.append(f"  expert {i}: {expert}")
    training = card.get("training", {})
    if training:
        parts = [f"{k.replace('_', ' ')} {training[k]:,}" if isinstance(training[k], int) else
                 f"{k.replace('_', ' ')} {training[k]:.4g}"
                 for k in ("steps", "tokens", "val_loss", "value_acc", "legal_move_rate") if k in training]
        lines.append("training: " + ", ".join(parts))
    results = card.get("results", [])
    if results:
        lines.append("measured:")
        for r in results:
            low, high = (r.get("interval") or [None, None])[:2]
            interval = f" [{low:.1%}, {high:.1%}]" if low is not None and high is not None else ""
            temp = f" at T={r['temperature']:g}" if r.get("temperature") is not None else ""
            lines.append(f"  vs {r.get('opponent')}{temp}: {r.get('score', 0):.1%}{interval} "
                         f"over {r.get('games')} games")
    if card.get("notes"):
        lines.append(f"notes: {card['notes']}")
    return "\n".join(lines)
