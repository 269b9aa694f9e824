"""Bad configuration and data stop before training with one message naming the field or file."""

import datasets
import pytest
import yaml

from tests.conftest import ROOT, dataset_dir
from textcnn.cli import train
from textcnn.errors import UserInputError
from textcnn.training.evaluation import evaluate_checkpoint


def run_train(*args: str) -> None:
    train(["--config", str(ROOT / "configs" / "sst2.yaml"), "--trainer.max_epochs=1", *args])


@pytest.mark.parametrize(
    "args, named",
    [
        (["--model.network.no_such_field=3"], "no_such_field"),
        (["--trainer.max_epochs=three"], "max_epochs"),
        (["--model.optimizer=adamax"], "optimizer"),
        (["--data.batch_size=-4"], "data.batch_size"),
    ],
)
def test_unknown_keys_and_wrong_types_name_the_field(args, named, capsys, tmp_path):
    with pytest.raises((SystemExit, UserInputError)) as raised:
        run_train(*args, f"--trainer.default_root_dir={tmp_path}")
    message = str(raised.value) if raised.type is UserInputError else capsys.readouterr().err
    assert named in message
    assert not (tmp_path / "lightning_logs").exists()  # stopped before training


def test_unknown_key_in_a_yaml_file_is_named(tmp_path, capsys):
    config = tmp_path / "typo.yaml"
    config.write_text("model:\n  netwrk:\n    embed_dim: 8\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        run_train("--config", str(config))
    assert "netwrk" in capsys.readouterr().err


def test_an_empty_training_split_is_refused(tmp_path, monkeypatch):
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["a", "b"])})
    empty = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": [], "label": []}, features=features)})
    empty.save_to_disk(str(tmp_path / "data"))
    with pytest.raises(UserInputError, match="cannot load .*data"):  # datasets cannot read it back
        run_train(f"--data.path={tmp_path / 'data'}", f"--trainer.default_root_dir={tmp_path / 'runs'}")
    monkeypatch.setattr("textcnn.data.sources.read_layout", lambda *args: empty)
    with pytest.raises(UserInputError, match="'train' split of .* is empty"):
        run_train(f"--data.path={tmp_path / 'data'}", f"--trainer.default_root_dir={tmp_path / 'runs'}")
    assert not (tmp_path / "runs").exists()


def test_a_split_whose_labels_the_model_never_saw_is_refused(checkpoint):
    # sst5's ClassLabel names are read by name into the model's classes: the three it lacks are named
    with pytest.raises(UserInputError, match=r"label\(s\) 'neutral', 'very negative', 'very positive' .*"
                                             r"not in data.label_names \(classes: negative, positive\)"):
        evaluate_checkpoint(checkpoint, split="test", data_overrides={"path": str(dataset_dir("sst5"))})


def _assert_set_as_written(written, parsed, where: str = "") -> None:
    if isinstance(written, dict):
        for key, value in written.items():
            assert key in parsed, f"{where}{key} missing from the parsed config"
            _assert_set_as_written(value, parsed[key], f"{where}{key}.")
    else:
        assert parsed == written, f"{where[:-1]}: written {written!r}, parsed {parsed!r}"


# Search spaces for `textcnn tune` sit beside the training configs; tests/test_tune.py reads them.
SEARCH_SPACES = {"search_space.yaml"}
TRAINING_CONFIGS = sorted(path for path in (ROOT / "configs").glob("*.yaml") if path.name not in SEARCH_SPACES)


def test_the_search_spaces_set_apart_exist():
    assert all((ROOT / "configs" / name).is_file() for name in SEARCH_SPACES)


@pytest.mark.parametrize("config", TRAINING_CONFIGS, ids=lambda path: path.name)
def test_every_shipped_config_is_accepted_as_written(config, capsys):
    """A field renamed in the code fails here, not for the user who runs the config."""
    with pytest.raises(SystemExit) as exited:
        train(["--config", str(config), "--print_config"])
    assert exited.value.code in (None, 0), capsys.readouterr().err
    _assert_set_as_written(yaml.safe_load(config.read_text(encoding="utf-8")), yaml.safe_load(capsys.readouterr().out))
