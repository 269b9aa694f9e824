"""``textcnn train --init_from=MODEL``: keep training a model on new data, rather than start again.

The run starts from the model's weights, tokenizer and network. It gets a fresh optimizer and
schedule, and the usual ``--trainer.*`` settings. MODEL is a ``.ckpt``, a model directory or a Hub
id of one. The classes are the new data's, in its order, followed by the model's classes that the
new data lacks (they stay). Each class keeps its classifier row by name. A class the model did not
know gets the row a fresh classifier would start with, and one log line names those classes. The
vocabulary is the model's: every text tokenizes as it did before, and words the model never saw
stay unknown.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path
from typing import Any

import torch

from textcnn.atomic import write_text_atomic
from textcnn.errors import UserInputError
from textcnn.inference.saved_model import SavedModel
from textcnn.training.run_config import Config, get_dotted, set_dotted

log = logging.getLogger(__name__)


def read_model(source: str) -> SavedModel:
    from textcnn.inference.loader import read_saved_model
    from textcnn.inference.saved_model import refuse_onnx

    return refuse_onnx(read_saved_model(source), "--init_from")


def prepare(config: Config, chosen: set[str]) -> tuple[Config, set[str], SavedModel, list[str]]:
    """``config`` set up to continue the model named by its ``init_from``: the model's network and
    tokenizer, the classes of the new data with the model's own kept. Also the chosen keys with those
    added (the recipe leaves them), the model, and the class names in their new order."""
    from textcnn.data.datamodule import TextDataModule

    source = config["init_from"]
    if config.get("ckpt_path"):
        raise UserInputError("give --init_from (start from a model, on new data) or --ckpt_path (resume an "
                             "interrupted run), not both")
    saved = read_model(source)
    root = Path(get_dotted(config, "trainer.default_root_dir") or ".")
    tokenizer_json = saved.tokenizer.to_str()
    path = root / "tokenizers" / f"init-from-{hashlib.sha256(tokenizer_json.encode()).hexdigest()[:20]}.json"
    if not path.exists():
        write_text_atomic(path, tokenizer_json)
    settings = {key: value for key, value in config["data"].items() if key != "label_names"}
    probe = TextDataModule(**{**settings, "tokenizer_path": str(path)})
    if probe.multi_label != saved.multi_label:
        kinds = ("single-label", "multi-label")
        raise UserInputError(f"{source} is {kinds[saved.multi_label]} but the new data is "
                             f"{kinds[probe.multi_label]}: continue a model on data labelled the way it was trained")
    names = list(probe.label_names)
    kept = [name for name in saved.label_names if name not in names]
    added = [name for name in names if name not in saved.label_names]
    names += kept
    log.info("init_from: %s, %d classes, %s epochs trained; new classes: %s", source, len(saved.label_names),
             saved.provenance.get("epochs_trained") or "?", ", ".join(added) if added else "none")
    config = {**config, "data": dict(config["data"]), "model": dict(config["model"])}
    set_dotted(config, "data.tokenizer_path", str(path))
    set_dotted(config, "data.label_names", names)
    set_dotted(config, "data.max_length", saved.max_length)
    set_dotted(config, "data.pretrained_vectors", None)  # the embeddings are the model's own
    set_dotted(config, "model.network", dataclasses.asdict(saved.config))
    return config, set(chosen) | {"model.network", "data.tokenizer_path", "data.label_names", "data.max_length",
                                  "data.pretrained_vectors"}, saved, names


def load_weights(network: torch.nn.Module, saved: SavedModel, names: list[str]) -> None:
    """Copy the saved weights into ``network`` (built for ``names``): every tensor as saved, except
    the classifier's rows, which follow their class by name (a new class keeps its fresh row)."""
    weights = saved.weights
    state = network.state_dict()
    rows = torch.tensor([saved.label_names.index(name) if name in saved.label_names else -1 for name in names])
    known = rows >= 0
    for key, value in state.items():
        old = weights.get(key)
        if old is None:
            raise UserInputError(f"{saved.source} has no {key}: it is not a textcnn model of this network")
        if old.shape == value.shape and not key.startswith("classifier."):
            value.copy_(old)
        elif key.startswith("classifier.") and old.shape[1:] == value.shape[1:]:
            value[known] = old[rows[known]]
        else:
            raise UserInputError(f"{saved.source}'s {key} has shape {tuple(old.shape)}, the network here "
                                 f"{tuple(value.shape)}: continue a model with its own network and tokenizer")


def describe(saved: SavedModel, names: list[str]) -> dict[str, Any]:
    """What the report says of the model a run started from."""
    return {"model": str(saved.source), "classes_before": saved.label_names,
            "classes_added": [name for name in names if name not in saved.label_names]}
