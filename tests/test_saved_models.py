"""Every path that reads a saved model reads it through one checked reader: a crafted or damaged
checkpoint or export, a checkpoint URL, or another run's checkpoint given to resume ends in one line
and runs no code."""

import functools
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, TINY_MODEL_ARGS, write_slice
from textcnn.errors import UserInputError
from textcnn.inference import load

FIXTURES = Path(__file__).parent / "fixtures" / "textcnn-0.1.0"
CHECKPOINT = FIXTURES / "sst2_tiny.ckpt"
EXPORT = FIXTURES / "sst2_tiny-onnx"


def hparams(c):
    return c["hyper_parameters"]


def network(c):
    return c["hyper_parameters"]["network"]


DAMAGED_CHECKPOINTS = {
    "malformed tokenizer": (lambda c: c.update(tokenizer_json="{not json"), "not a tokenizer.json"),
    "tokenizer not a string": (lambda c: c.update(tokenizer_json=5), "not tokenizer.json text"),
    "tokenizer without [PAD]": (lambda c: c.update(tokenizer_json=c["tokenizer_json"].replace("[PAD]", "[NIX]")),
                                "tokenizer is unusable"),
    "wrong tensor shape": (lambda c: c["state_dict"].update({"model.classifier.weight": torch.zeros(3, 8)}),
                           r"model.classifier.weight has shape \[3, 8\]"),
    "missing tensor": (lambda c: c["state_dict"].pop("model.classifier.bias"), "lack model.classifier.bias"),
    "extra tensor": (lambda c: c["state_dict"].update({"model.extra": torch.zeros(1)}), "hold model.extra"),
    "no network": (lambda c: hparams(c).pop("network"), "no 'network'"),
    "hyperparameters a list": (lambda c: c.update(hyper_parameters=[1, 2]), "not a mapping"),
    "network a string": (lambda c: hparams(c).update(network="big"), "network is a str"),
    "unknown network key": (lambda c: network(c).update(width=3), "unexpected keyword argument 'width'"),
    "network value of the wrong type": (lambda c: network(c).update(embed_dim="8"), "not a textcnn architecture"),
    "360 GB of channels": (lambda c: network(c).update(conv_channels=[100000, 100000]), "describe \\[100000, 8, 2\\]"),
    "rows past any tensor size": (lambda c: network(c).update(ngram_order=2, ngram_buckets=10**30), "cannot be built"),
    "tokenizer larger than the table": (lambda c: hparams(c).update(vocab_size=10), "describe \\[10, 8\\]"),
    "max_length 0": (lambda c: c["datamodule_hyper_parameters"].update(max_length=0), "max_length is 0"),
    "max_length negative": (lambda c: c["datamodule_hyper_parameters"].update(max_length=-5), "max_length is -5"),
    "duplicate label names": (lambda c: hparams(c).update(label_names=["good", "good"]), "repeat 'good'"),
    "label names a string": (lambda c: hparams(c).update(label_names="np"), "'np' are not a list"),
    "label count off": (lambda c: hparams(c).update(label_names=["a", "b", "c"]), "3 label names for 2 classes"),
    "multi-label without thresholds": (lambda c: hparams(c).update(multi_label=True), "lack decision_thresholds"),
    "multi_label not a bool": (lambda c: hparams(c).update(multi_label="yes"), "multi_label is 'yes'"),
}


def damaged_checkpoint(tmp_path: Path, mutate) -> Path:
    raw = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    mutate(raw)
    path = tmp_path / "damaged.ckpt"
    torch.save(raw, path)
    return path


@pytest.mark.parametrize("case", DAMAGED_CHECKPOINTS)
def test_a_damaged_checkpoint_is_refused_in_one_line(case, tmp_path):
    mutate, message = DAMAGED_CHECKPOINTS[case]
    with pytest.raises(UserInputError, match=message) as error:
        load(damaged_checkpoint(tmp_path, mutate))
    assert "\n" not in str(error.value) and "damaged.ckpt is damaged or was not written by textcnn" in str(error.value)


@pytest.mark.parametrize("command", ["predict", "evaluate", "export"])
def test_every_command_refuses_a_damaged_checkpoint_with_exit_status_2(command, tmp_path, capsys):
    from textcnn.cli import main

    path = damaged_checkpoint(tmp_path, DAMAGED_CHECKPOINTS["duplicate label names"][0])
    extra = {"predict": ["fine"], "evaluate": [], "export": ["--output", str(tmp_path / "out")]}[command]
    with pytest.raises(SystemExit) as exit_:
        main([command, "--checkpoint", str(path), *extra])
    assert exit_.value.code == 2
    stderr = capsys.readouterr().err.strip().splitlines()
    assert stderr[-1].startswith("error: ") and "repeat 'good'" in stderr[-1]
    assert not (tmp_path / "out").exists()


DAMAGED_METADATA = {
    "three labels for two scores": (lambda m: m.update(label_names=["a", "b", "c"]), r"gives \[2\] scores"),
    "one label": (lambda m: m.update(label_names=["a"]), "at least 2"),
    "duplicate labels": (lambda m: m.update(label_names=["a", "a"]), "repeat 'a'"),
    "no max_length": (lambda m: m.pop("max_length"), "no 'max_length'"),
    "max_length a string": (lambda m: m.update(max_length="64"), "max_length is '64'"),
    "max_length huge": (lambda m: m.update(max_length=10**9), "max_length is 1000000000"),
    "min_length 200000": (lambda m: m.update(min_length=200000), "min_length is 200000"),
    "temperature negative": (lambda m: m.update(temperature=-1), "temperature is -1"),
    "temperature a string": (lambda m: m.update(temperature="1"), "temperature is '1'"),
    "thresholds off": (lambda m: m.update(thresholds=[0.5]), "one number in \\(0, 1\\) per label"),
    "vocabulary smaller than the tokenizer": (lambda m: m.update(vocab_size=3), "embeds only 3"),
    "network missing": (lambda m: m.pop("network"), "no 'network'"),
    "an unknown quantization": (lambda m: m.update(quantization="int4"), "quantization is 'int4'"),
}


def damaged_export(tmp_path: Path, text: str) -> Path:
    directory = tmp_path / "export"
    shutil.copytree(EXPORT, directory)
    (directory / "metadata.json").write_text(text)
    return directory


@pytest.mark.parametrize("case", DAMAGED_METADATA)
def test_an_export_with_tampered_metadata_is_refused_in_one_line(case, tmp_path):
    mutate, message = DAMAGED_METADATA[case]
    metadata = json.loads((EXPORT / "metadata.json").read_text())
    mutate(metadata)
    with pytest.raises(UserInputError, match=message) as error:
        load(damaged_export(tmp_path, json.dumps(metadata)))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("text", ["[1, 2]", '"metadata"', "null"])
def test_metadata_that_is_not_an_object_is_refused(text, tmp_path):
    with pytest.raises(UserInputError, match="export format None"):
        load(damaged_export(tmp_path, text))


def test_an_embedding_table_smaller_than_the_tokenizer_is_found_at_load(tmp_path):
    """metadata.json may lie about the vocabulary: the graph itself is probed with the largest id."""
    directory = damaged_export(tmp_path, (EXPORT / "metadata.json").read_text())
    tokenizer = json.loads((directory / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    for index in range(len(vocab), len(vocab) + 50):
        vocab[f"extra{index}"] = index
    (directory / "tokenizer.json").write_text(json.dumps(tokenizer))
    metadata = json.loads((directory / "metadata.json").read_text())
    metadata["vocab_size"] = len(vocab)
    (directory / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(UserInputError, match="cannot score token id"):
        load(directory)


# -- resuming ----------------------------------------------------------------------------------------

class _RunsCodeOnLoad:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture
def code_running_checkpoint(tmp_path):
    marker = tmp_path / "pwned"
    crafted = tmp_path / "served" / "evil.ckpt"
    crafted.parent.mkdir()
    torch.save({"state_dict": _RunsCodeOnLoad(marker), "hyper_parameters": {}, "tokenizer_json": ""}, crafted)
    return crafted, marker


@pytest.fixture
def http_server(code_running_checkpoint):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(code_running_checkpoint[0].parent))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def resume_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["--config", str(ROOT / "configs" / "sst2.yaml"), *TINY_MODEL_ARGS, f"--trainer.default_root_dir={tmp_path}",
            *extra]


@pytest.mark.parametrize("with_tokenizer", [True, False])
def test_resuming_from_a_url_is_refused_and_runs_no_code(http_server, code_running_checkpoint, tmp_path,
                                                         with_tokenizer):
    from textcnn.cli import train
    from textcnn.training.checkpoint_io import AtomicCheckpointIO

    _, marker = code_running_checkpoint
    url = f"{http_server}/evil.ckpt"
    tokenizer = [f"--data.tokenizer_path={FIXTURES / 'sst2_tiny-onnx' / 'tokenizer.json'}"] if with_tokenizer else []
    with pytest.raises(UserInputError, match="is a URL; textcnn reads checkpoints from local files only"):
        train(resume_args(tmp_path, f"--ckpt_path={url}", *tokenizer))
    with pytest.raises(UserInputError, match="is a URL"):
        AtomicCheckpointIO().load_checkpoint(url)  # what Lightning calls to resume
    assert not marker.exists()


def test_resuming_from_a_crafted_local_file_is_refused_and_runs_no_code(code_running_checkpoint, tmp_path):
    from textcnn.cli import train

    crafted, marker = code_running_checkpoint
    tokenizer = f"--data.tokenizer_path={FIXTURES / 'sst2_tiny-onnx' / 'tokenizer.json'}"
    with pytest.raises(UserInputError, match="refusing to load"):
        train(resume_args(tmp_path, f"--ckpt_path={crafted}", tokenizer))
    assert not marker.exists()


@pytest.fixture(scope="module")
def subj_slice(tmp_path_factory) -> Path:
    return write_slice("subj", tmp_path_factory.mktemp("subj"), {"train": 300, "test": 100})


def test_resuming_another_networks_checkpoint_is_one_error(checkpoint, sst2_slice, tmp_path):
    from textcnn.cli import train

    last = Path(checkpoint).with_name("last.ckpt")
    with pytest.raises(UserInputError, match=r"was written by another run \(model.network.conv_channels: \[32, 48\] "
                                             r"there, \[16, 48\] here"):
        train(resume_args(tmp_path, f"--data.path={sst2_slice}", f"--ckpt_path={last}", "--trainer.max_epochs=6",
                          "--model.network.conv_channels=[16, 48]"))


def test_resuming_on_another_datasets_labels_is_one_error(checkpoint, subj_slice, tmp_path):
    """An SST-2 checkpoint resumed on Subj would keep SST-2's tokenizer and relabel the classes."""
    from textcnn.cli import train

    last = Path(checkpoint).with_name("last.ckpt")
    with pytest.raises(UserInputError, match=r"label_names: \['negative', 'positive'\] there, "
                                             r"\['objective', 'subjective'\] here"):
        train(resume_args(tmp_path, f"--data.path={subj_slice}", f"--ckpt_path={last}", "--trainer.max_epochs=6"))


def test_resuming_with_only_more_epochs_and_less_dropout_still_works(checkpoint, sst2_slice, tmp_path):
    from textcnn.cli import train

    last = Path(checkpoint).with_name("last.ckpt")
    epoch = torch.load(last, weights_only=True)["epoch"]
    report = train(resume_args(tmp_path, f"--data.path={sst2_slice}", f"--ckpt_path={last}",
                               f"--trainer.max_epochs={epoch + 2}", "--model.network.dropout=0.1"))
    assert torch.load(Path(report["checkpoint"]).with_name("last.ckpt"), weights_only=True)["epoch"] == epoch + 1

