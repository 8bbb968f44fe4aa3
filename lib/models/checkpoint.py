"""Checkpoints written atomically (an interrupted write leaves the previous file intact).

``last.pt`` holds everything a resumed run needs: weights, EMA, optimiser, scheduler, epoch,
RNG states (:mod:`lib.training.rng`), config. ``best.pt`` holds what inference, distillation and export need
(``INFERENCE_KEYS``): without AdamW's two moments it is about half the size (by parameter
count, a SwinV2-B teacher's ``last.pt`` holds 4 x 88.5 M float32 values, about 1.4 GB)."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from lib.io import atomic_path
from lib.models import build_model
from lib.models.landmark_net import LandmarkNet
from lib.models.pruning import reshape_like

INFERENCE_KEYS = ("model", "ema", "epoch", "best_nme", "config", "model_config")


def inference_state(state: dict) -> dict:
    """The part of a training ``state`` that rebuilds and scores the model (see ``load_model``)."""
    return {key: state[key] for key in INFERENCE_KEYS}


def save_checkpoint(path: str | Path, state: dict) -> None:
    """``torch.save`` to a temporary file beside ``path``, then one atomic rename."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint's dict, read with ``weights_only=True``: tensors, numbers, strings and
    containers only, so a file from elsewhere cannot run code when it is loaded."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if "Unsupported global" not in str(error):  # no foreign object: bytes that are no pickle of this kind at all
            reason = next((line.strip() for line in str(error).splitlines() if line.strip().startswith("Unsupported")), first_line)
            raise ValueError(f"{path}: not a checkpoint (unreadable: {reason})") from None
        raise ValueError(f"{path}: refused, it holds more than tensors, numbers and containers (loading it could run code): {first_line}") from error
    except (EOFError, RuntimeError, OSError) as error:  # empty, truncated or not a torch file at all
        raise ValueError(f"{path}: not a checkpoint (unreadable: {type(error).__name__}: {str(error).strip()[:200] or 'empty file'})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a checkpoint of this kit (a {type(state).__name__}, not a dict); checkpoints come from python -m lib.training")
    return state


def load_model(path: str | Path, ema: bool = True, input_size: int | None = None) -> LandmarkNet:
    """Rebuild a trained model from a checkpoint (the EMA weights by default), in eval mode;
    ``input_size`` rebuilds it for another input side (the networks are size-agnostic)."""
    state = load_checkpoint(path)
    needed = ["model_config", "ema" if ema else "model"]
    if any(key not in state for key in needed):
        raise ValueError(
            f"{path}: not a model checkpoint of this kit (it lacks {[key for key in needed if key not in state]}); best.pt and last.pt of python -m lib.training are"
        )
    config = {key: value for key, value in state["model_config"].items() if key != "checkpoint"}  # the key's name before `pretrained`
    model = build_model({**config, **({"input_size": input_size} if input_size else {})}, load_weights=False)
    weights = state["ema"]["module"] if ema else state["model"]
    if config.get("prune_ratio"):
        reshape_like(model, weights)
    model.load_state_dict(weights)
    return model.eval()


def init_from_checkpoint(model: LandmarkNet, path: str | Path) -> bool:
    """Start ``model`` from a checkpoint's weights (its EMA weights, as :func:`load_model` uses):
    fine-tuning, e.g. on real faces after synthetic training. The architectures must match (a
    pruned checkpoint's network first takes its narrower shapes); an error names the file and the
    first missing, unexpected or differently shaped weights. Returns whether the checkpoint was
    pruned."""
    state = load_checkpoint(path)
    weights = state["ema"]["module"] if "ema" in state else state["model"]
    pruned = bool(state.get("model_config", {}).get("prune_ratio"))
    if pruned:
        reshape_like(model, weights)
    own = model.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    reshaped = [f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}" for k, v in own.items() if k in weights and weights[k].shape != v.shape]
    if missing or unexpected or reshaped:
        found = "; ".join(f"{name}: {', '.join(keys[:3])}" for name, keys in (("missing", missing), ("unexpected", unexpected), ("shapes", reshaped)) if keys)
        raise ValueError(f"{path}: not this model's architecture ({found})")
    model.load_state_dict(weights)
    return pruned
