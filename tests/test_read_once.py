"""``textcnn.load`` reads a saved model once: each file opened once, the tokenizer parsed once, the
network built once (on the meta device, its saved tensors then assigned), whatever kind the path is."""

import collections
import os
import sys
from pathlib import Path

import pytest
import tokenizers
import torch

from textcnn.inference import Predictor, load
from textcnn.inference.loader import read_saved_model
from textcnn.model import TextCNN

FIXTURES = Path(__file__).parent / "fixtures" / "textcnn-0.1.0"
CHECKPOINT = FIXTURES / "sst2_tiny.ckpt"
EXPORT = FIXTURES / "sst2_tiny-onnx"

_watched: list[Path] = []
_opened: collections.Counter = collections.Counter()


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _watched and isinstance(args[0], (str, bytes, os.PathLike)):
        opened = Path(os.fsdecode(args[0]))
        if any(opened == root or root in opened.parents for root in _watched):
            _opened[opened.name] += 1


sys.addaudithook(_audit)  # cannot be removed; it counts only while a test watches a path


@pytest.fixture
def reads(monkeypatch):
    """Counts, while a test loads: Python opens of files under the watched path, tokenizer parses,
    networks built and torch.load calls."""
    counts = collections.Counter()

    def counting(name, function):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return function(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(tokenizers.Tokenizer, "from_str", counting("tokenizer parses", tokenizers.Tokenizer.from_str))
    monkeypatch.setattr(tokenizers.Tokenizer, "from_file", counting("tokenizer parses", tokenizers.Tokenizer.from_file))
    monkeypatch.setattr(TextCNN, "__init__", counting("networks built", TextCNN.__init__))
    monkeypatch.setattr(torch, "load", counting("torch.load", torch.load))

    def watch(path: Path):
        _opened.clear()
        _watched[:] = [Path(path).resolve()]
        return counts

    yield watch
    _watched.clear()


@pytest.fixture(scope="module")
def model_directory(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("saved") / "model"
    Predictor.from_checkpoint(CHECKPOINT).save(directory)
    return directory


def test_a_checkpoint_is_read_parsed_and_built_once(reads):
    counts = reads(CHECKPOINT)
    predictor = load(CHECKPOINT)
    assert dict(counts) == {"torch.load": 1, "tokenizer parses": 1, "networks built": 1}
    assert _opened == {"sst2_tiny.ckpt": 1}
    assert predictor.predict("a gripping film")[0]["label"] in predictor.label_names


def test_a_model_directory_is_read_parsed_and_built_once(reads, model_directory):
    counts = reads(model_directory)
    load(model_directory)
    assert dict(counts) == {"tokenizer parses": 1, "networks built": 1}
    assert _opened == {"config.json": 1, "tokenizer.json": 1}  # model.safetensors: mapped by safetensors itself


def test_an_onnx_export_is_read_and_parsed_once(reads):
    pytest.importorskip("onnxruntime")
    counts = reads(EXPORT)
    load(EXPORT)
    assert dict(counts) == {"tokenizer parses": 1}
    assert _opened == {"metadata.json": 1, "tokenizer.json": 1}


def test_the_network_is_the_saved_tensors_not_a_copy():
    saved = read_saved_model(CHECKPOINT)
    weights = dict(saved.weights)
    network = saved.network()
    for name, tensor in network.state_dict().items():
        assert tensor.data_ptr() == weights[name].data_ptr(), name
        assert not tensor.is_meta
    again = saved.network()  # a second network has its own copy
    first = next(iter(again.state_dict()))
    assert again.state_dict()[first].data_ptr() != weights[first].data_ptr()
    assert torch.equal(again.state_dict()[first], weights[first])


def test_every_kind_of_saved_model_gives_the_same_answers(model_directory):
    texts = ["a gripping , funny film", "dull and lifeless", ""]
    reference = load(CHECKPOINT).predict_proba(texts)
    assert torch.equal(load(model_directory).predict_proba(texts), reference)
    assert read_saved_model(model_directory).kind == "directory"
    assert read_saved_model(CHECKPOINT).kind == "checkpoint"
    assert read_saved_model(EXPORT).kind == "onnx"
