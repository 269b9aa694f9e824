"""``textcnn train --init_from=MODEL``: keep training a model on new data, rather than start again.

The run starts from the model's weights, tokenizer and network. It gets a fresh optimizer and
schedule, and the usual ``--trainer.*`` settings. MODEL is a ``.ckpt``, a model directory or a Hub
id of one. The classes are the new data's, in its order, followed by the model's classes that the
new data lacks (they stay). Each class keeps its classifier row by name. A class the model did not
know gets the row a fresh classifier would start with, and one log line names those classes.

The vocabulary is the model's, grown by the words of the new training texts it lacks that occur
there at least ``data.min_frequency`` times (a word-level tokenizer; sub-word ones keep theirs, their
pieces already spell new words). A new word's id follows the old ones, so every text tokenizes as
before wherever its words were known. Its embedding starts from the pretrained vectors the model was
trained with (or ``data.pretrained_vectors`` when given), else as the model's ``[UNK]`` row: the
word was unknown to it, so the continued model first predicts exactly as the model did. (Fresh
random rows instead scattered those words: a small SST-2 model continued for two epochs on SST-2
sentences and TREC questions reached 58% validation accuracy with them, 78% with ``[UNK]``'s row.)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

import torch
from tokenizers import Tokenizer

from textcnn.atomic import write_text_atomic
from textcnn.errors import UserInputError
from textcnn.inference.saved_model import SavedModel
from textcnn.tokenizer import UNK_ID
from textcnn.training.run_config import Config, get_dotted, set_dotted

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Start:
    """What a continued run starts from: the model, the classes in their new order, and the words
    its vocabulary grew by (with their first embeddings, when pretrained vectors give them)."""

    saved: SavedModel
    names: list[str]
    added_words: list[str] = dataclasses.field(default_factory=list)
    word_vectors: dict[int, torch.Tensor] = dataclasses.field(default_factory=dict)  # position in added_words → vector


def read_model(source: str) -> SavedModel:
    from textcnn.inference.loader import read_saved_model
    from textcnn.inference.saved_model import refuse_onnx

    return refuse_onnx(read_saved_model(source), "--init_from")


def prepare(config: Config, chosen: set[str]) -> tuple[Config, set[str], Start]:
    """``config`` set up to continue the model named by its ``init_from``: the model's network, its
    tokenizer grown by the new data's words, the classes of the new data with the model's own kept.
    Also the chosen keys with those added (the recipe leaves them), and where the run starts."""
    from textcnn.data.datamodule import TextDataModule

    source = config["init_from"]
    if config.get("ckpt_path"):
        raise UserInputError("give --init_from (start from a model, on new data) or --ckpt_path (resume an "
                             "interrupted run), not both")
    saved = read_model(source)
    root = Path(get_dotted(config, "trainer.default_root_dir") or ".")
    data = config["data"]
    # the new data's classes as it holds them, or as data.label_names names them
    dropped = ("replay_file",) if "data.label_names" in chosen else ("replay_file", "label_names")
    settings = {key: value for key, value in data.items() if key not in dropped}
    probe = TextDataModule(**{**settings, "tokenizer_path": _written(root, saved.tokenizer.to_str())})
    if probe.multi_label != saved.multi_label:
        kinds = ("single-label", "multi-label")
        raise UserInputError(f"{source} is {kinds[saved.multi_label]} but the new data is "
                             f"{kinds[probe.multi_label]}: continue a model on data labelled the way it was trained")
    names = list(probe.label_names)
    added = [name for name in names if name not in saved.label_names]
    names += [name for name in saved.label_names if name not in names]
    grown, words = grown_tokenizer(saved.tokenizer, probe.tokenizer_texts(), data.get("min_frequency", 1),
                                   data.get("max_vocab_size", 30000))
    start = Start(saved, names, words)
    if words and saved.config.embedding_mode != "rand" and saved.config.architecture != "region":
        start.word_vectors = vectors_for(_vectors(config, chosen, saved), words, saved.config.embed_dim)
    log.info("init_from: %s, %d classes, %s epochs trained; new classes: %s; vocabulary %s", source,
             len(saved.label_names), saved.provenance.get("epochs_trained") or "?", ", ".join(added) or "none",
             f"grew by {len(words):,} words the new training texts have at least {data.get('min_frequency', 1)} "
             f"time(s) ({saved.vocab_size:,} → {saved.vocab_size + len(words):,})" if words else "as it was")
    config = {**config, "data": dict(data), "model": dict(config["model"])}
    set_dotted(config, "data.tokenizer_path", _written(root, grown))
    set_dotted(config, "data.label_names", names)
    set_dotted(config, "data.max_length", saved.max_length)
    set_dotted(config, "data.pretrained_vectors", None)  # the embeddings are the model's own (and the added ones)
    set_dotted(config, "model.network", dataclasses.asdict(saved.config))
    return config, set(chosen) | {"model.network", "data.tokenizer_path", "data.label_names", "data.max_length",
                                  "data.pretrained_vectors"}, start


def _written(root: Path, tokenizer_json: str) -> str:
    """The path of ``tokenizer_json`` under the run's ``tokenizers`` directory, named by its digest."""
    path = root / "tokenizers" / f"init-from-{hashlib.sha256(tokenizer_json.encode()).hexdigest()[:20]}.json"
    if not path.exists():
        write_text_atomic(path, tokenizer_json)
    return str(path)


def grown_tokenizer(tokenizer: Tokenizer, texts: Iterable[Optional[str]], min_frequency: int,
                    limit: int) -> tuple[str, list[str]]:
    """``tokenizer`` (as JSON) with the words of ``texts`` it lacks that occur at least
    ``min_frequency`` times, the most frequent first (at most ``limit``), given the ids after its
    own; and those words. A sub-word tokenizer is returned as it is."""
    config = json.loads(tokenizer.to_str())
    vocab = config["model"].get("vocab")
    if config["model"].get("type") != "WordLevel" or not isinstance(vocab, dict):
        return tokenizer.to_str(), []
    counts: Counter = Counter()
    normalizer, splitter = tokenizer.normalizer, tokenizer.pre_tokenizer
    for text in texts:
        text = normalizer.normalize_str(text or "") if normalizer is not None else (text or "")
        counts.update(word for word, _ in splitter.pre_tokenize_str(text) if word not in vocab)
    words = [word for word, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
             if count >= min_frequency][:limit]
    first = max([*vocab.values(), *(added["id"] for added in config.get("added_tokens") or [])]) + 1
    vocab.update({word: first + offset for offset, word in enumerate(words)})
    return json.dumps(config, ensure_ascii=False), words


def _vectors(config: Config, chosen: set[str], saved: SavedModel) -> Optional[str]:
    """The pretrained vectors for the added words: ``data.pretrained_vectors`` when given, else the
    model's own, where they can be found (a model directory keeps a file's name, not its path)."""
    from textcnn.data.vectors import GLOVE_6B_50D

    if "data.pretrained_vectors" in chosen:
        return get_dotted(config, "data.pretrained_vectors")
    vectors = saved.data.get("pretrained_vectors")
    if vectors and vectors != GLOVE_6B_50D and not Path(vectors).expanduser().is_file():
        log.info("init_from: the model's vectors %s are not here; the added words start as [UNK] did "
                 "(give --data.pretrained_vectors=FILE to start them from their vectors)", vectors)
        return None
    return vectors


def vectors_for(vectors: Optional[str], words: list[str], embed_dim: int) -> dict[int, torch.Tensor]:
    """The pretrained vectors of those of ``words`` that have one, by position in ``words``."""
    from textcnn.data.vectors import found_vectors

    if not vectors:
        return {}
    found, dim, _ = found_vectors(vectors, {word: offset for offset, word in enumerate(words)})
    if dim != embed_dim:
        raise UserInputError(f"data.pretrained_vectors {vectors} has {dim} dimensions but the model's embeddings "
                             f"{embed_dim}: give the vectors it was trained with")
    return {offset: torch.tensor(vector, dtype=torch.float32) for offset, vector in found.items()}


def load_weights(network: torch.nn.Module, start: Start) -> None:
    """Copy the saved weights into ``network`` (built for the new classes and vocabulary): every
    tensor as saved, except the classifier's rows, which follow their class by name (a new class
    keeps its fresh row), and the vocabulary's rows, which the added words follow (their fresh rows,
    or their vectors)."""
    saved, names = start.saved, start.names
    weights, state = saved.weights, network.state_dict()
    rows = torch.tensor([saved.label_names.index(name) if name in saved.label_names else -1 for name in names])
    known = rows >= 0
    old_size, grown = saved.vocab_size, len(start.added_words)
    for key, value in state.items():
        old = weights.get(key)
        if old is None:
            raise UserInputError(f"{saved.source} has no {key}: it is not a textcnn model of this network")
        if old.shape == value.shape and not key.startswith("classifier."):
            value.copy_(old)
        elif key.startswith("classifier.") and old.shape[1:] == value.shape[1:]:
            value[known] = old[rows[known]]
        elif grown and old.shape[1:] == value.shape[1:] and value.shape[0] - old.shape[0] == grown:
            value[:old_size] = old[:old_size]
            value[old_size:old_size + grown] = old[UNK_ID]  # a new word starts as the unknown word it was
            value[old_size + grown:] = old[old_size:]  # the n-gram bag's hashed rows follow the vocabulary
            if key in ("embedding.weight", "static_embedding.weight"):
                for offset, vector in start.word_vectors.items():
                    value[old_size + offset] = vector
        else:
            raise UserInputError(f"{saved.source}'s {key} has shape {tuple(old.shape)}, the network here "
                                 f"{tuple(value.shape)}: continue a model with its own network and tokenizer")


def describe(start: Start) -> dict[str, Any]:
    """What the report says of the model a run started from."""
    return {"model": str(start.saved.source), "classes_before": start.saved.label_names,
            "classes_added": [name for name in start.names if name not in start.saved.label_names],
            "vocabulary_before": start.saved.vocab_size, "words_added": len(start.added_words)}
