"""textcnn tune: the search-space file, its one-line errors, pruning, and a resumable search on a TREC slice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.conftest import ROOT, TINY_MODEL_ARGS, write_slice
from textcnn.errors import UserInputError
from textcnn.training.build import build
from textcnn.training.search_space import Choice, Range, parse_search_space, read_search_space

pytest.importorskip("optuna", reason="the [tune] extra (part of [dev]) is not installed")

from textcnn.cli import tune, tune_main  # noqa: E402
from textcnn.training.tune import ReportToTrial  # noqa: E402

CONFIG = {key: value for key, value in build([], instantiate=False).config.items() if key != "config"}


def space(spec: dict) -> dict:
    return parse_search_space(spec, CONFIG)


def test_ranges_and_choices_take_their_type_from_the_training_config():
    parameters = space({
        "model.learning_rate": {"low": 0.0003, "high": 0.01, "log": True},
        "model.network.dropout": {"low": 0, "high": 1},  # integers written, but the key holds a float
        "data.batch_size": {"low": 32, "high": 128, "step": 32},
        "model.network.conv_channels": {"choices": [[64, 128], [128, 256]]},
        "trainer.max_epochs": {"choices": [5, 10]},
    })
    assert parameters["model.learning_rate"] == Range("model.learning_rate", 0.0003, 0.01, log=True)
    assert parameters["model.network.dropout"] == Range("model.network.dropout", 0.0, 1.0)
    assert not parameters["model.network.dropout"].integer
    assert parameters["data.batch_size"] == Range("data.batch_size", 32, 128, step=32, integer=True)
    channels = parameters["model.network.conv_channels"]
    assert isinstance(channels, Choice) and channels.labels == ["[64, 128]", "[128, 256]"]
    assert channels.value("[128, 256]") == [128, 256]
    assert parameters["trainer.max_epochs"].labels == [5, 10]


class FixedTrial:
    """Answers each suggest_* call with its lowest value, recording the call."""

    def __init__(self):
        self.calls = []

    def suggest_float(self, name, low, high, step=None, log=False):
        self.calls.append(("float", name, low, high, step, log))
        return low

    def suggest_int(self, name, low, high, step=1, log=False):
        self.calls.append(("int", name, low, high, step, log))
        return low

    def suggest_categorical(self, name, choices):
        self.calls.append(("categorical", name, tuple(choices)))
        return choices[-1]


def test_parameters_suggest_through_optunas_methods_and_choices_come_back_as_values():
    parameters = space({"model.learning_rate": {"low": 0.001, "high": 0.01, "log": True},
                        "data.batch_size": {"low": 32, "high": 96, "step": 32},
                        "model.network.kernel_sizes": {"choices": [[[3, 4, 5], 3], [3, 3]]}})
    trial = FixedTrial()
    values = {key: parameter.suggest(trial) for key, parameter in parameters.items()}
    assert values == {"model.learning_rate": 0.001, "data.batch_size": 32, "model.network.kernel_sizes": [3, 3]}
    assert trial.calls == [("float", "model.learning_rate", 0.001, 0.01, None, True),
                           ("int", "data.batch_size", 32, 96, 32, False),
                           ("categorical", "model.network.kernel_sizes", ("[[3, 4, 5], 3]", "[3, 3]"))]


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"model.dropout": {"low": 0.1, "high": 0.6}}, "model.dropout is not a key of the training config; "
                                                         "did you mean model.network.dropout?"),
        ({"model.network": {"choices": [1]}}, "model.network is a section of the training config"),
        ({"model.network.dropout": {"low": 0.6, "high": 0.1}}, "low 0.6 is greater than high 0.1; swap them"),
        ({"trainer.max_epochs": {"choices": []}}, "choices must be a non-empty list"),
        ({"trainer.max_epochs": {"choices": 5}}, "choices must be a non-empty list"),
        ({"trainer.max_epochs": {"choices": [5, 5]}}, "the choice 5 is given twice"),
        ({"model.network.dropout": 0.3}, "give a range {low: …, high: …} or {choices: […]}"),
        ({"model.network.dropout": {"low": 0.1, "hihg": 0.6}}, "unknown field 'hihg'"),
        ({"model.network.dropout": {"low": 0.1}}, "model.network.dropout has no high"),
        ({"model.network.dropout": {"low": "a", "high": 0.6}}, "low must be a number"),
        ({"model.learning_rate": {"low": 0, "high": 0.01, "log": True}}, "log: true needs low > 0"),
        ({"model.learning_rate": {"low": 0.001, "high": 0.01, "log": "yes"}}, "log must be true or false"),
        ({"model.learning_rate": {"low": 0.001, "high": 0.01, "log": True, "step": 0.001}}, "log or step, not both"),
        ({"data.batch_size": {"low": 16, "high": 64, "step": -16}}, "step must be positive"),
        ({"data.batch_size": {"low": 16.5, "high": 64}}, "data.batch_size holds an integer"),
        ({"trainer.max_epochs": {"choices": [5], "low": 1}}, "gives both choices and low"),
        (["model.learning_rate"], "must map config keys to ranges"),
        (None, "is empty"),
    ],
)
def test_a_mistake_in_the_search_space_is_one_line_naming_the_key_and_the_fix(spec, message):
    with pytest.raises(UserInputError) as raised:
        space(spec)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_search_space_files_that_cannot_be_read_are_named(tmp_path):
    with pytest.raises(UserInputError, match="does not exist; pass a YAML file to --search-space"):
        read_search_space(tmp_path / "missing.yaml", CONFIG)
    broken = tmp_path / "broken.yaml"
    broken.write_text("model.learning_rate: {low: 0.1, high: [\n", encoding="utf-8")
    with pytest.raises(UserInputError, match=r"broken.yaml is not valid YAML at line \d"):
        read_search_space(broken, CONFIG)


def test_the_shipped_search_space_is_valid():
    parameters = read_search_space(ROOT / "configs" / "search_space.yaml", CONFIG)
    assert "model.learning_rate" in parameters and "model.network.conv_channels" in parameters


def _write(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def test_values_the_training_parser_refuses_stop_the_search_before_any_trial(tmp_path):
    bad = _write(tmp_path / "space.yaml", {"trainer.max_epochs": {"choices": [2, "five"]}})
    with pytest.raises(UserInputError, match=r"search space: trainer.max_epochs = 'five': the training config "
                                             r"refuses it \(Parser key \"trainer.max_epochs\""):
        tune(["--search-space", str(bad), f"--trainer.default_root_dir={tmp_path / 'run'}"])
    assert not (tmp_path / "run").exists()


def test_tune_mistakes_end_as_one_error_line_and_status_2(tmp_path, capsys):
    bad = _write(tmp_path / "space.yaml", {"model.dropout": {"low": 0.1, "high": 0.5}})
    for argv, message in (
        (["--search-space", str(bad)], "model.dropout is not a key of the training config"),
        (["--trials", "3"], "the following arguments are required: --search-space"),
        (["--search-space", str(bad), "--trials", "0"], "--trials must be a positive integer"),
        (["--search-space", str(bad), "--trainer.max_epochs=x"], "the training options: the training config refuses it"),
    ):
        with pytest.raises(SystemExit) as exited:
            tune_main(argv)
        assert exited.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_without_optuna_tune_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    good = _write(tmp_path / "space.yaml", {"trainer.max_epochs": {"choices": [1, 2]}})
    with pytest.raises(UserInputError, match=r"pip install 'textcnn\[tune\]'"):
        tune(["--search-space", str(good)])


def test_training_and_predicting_never_import_optuna():
    script = "import sys, textcnn.cli; print('optuna' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.strip() == "False"


class RecordingTrial:
    def __init__(self, prune_from: int):
        self.reports, self.prune_from = [], prune_from

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return self.reports[-1][0] >= self.prune_from


def test_the_pruning_callback_reports_each_epoch_and_stops_the_run_when_told():
    trial = RecordingTrial(prune_from=1)
    callback = ReportToTrial(trial, "val_acc")
    trainer = SimpleNamespace(sanity_checking=True, callback_metrics={"val_acc": 0.3}, current_epoch=0, should_stop=False)
    callback.on_validation_end(trainer, None)  # the sanity check is not an epoch
    assert trial.reports == [] and not trainer.should_stop
    trainer.sanity_checking = False
    callback.on_validation_end(trainer, None)
    assert trial.reports == [(0, pytest.approx(0.3))] and not trainer.should_stop and callback.pruned_at is None
    trainer.current_epoch, trainer.callback_metrics = 1, {"val_acc": 0.4}
    callback.on_validation_end(trainer, None)
    assert trial.reports[-1] == (1, pytest.approx(0.4)) and trainer.should_stop and callback.pruned_at == 1


# -- a real search on a TREC slice ---------------------------------------------------------------
SEARCH_SPACE = {"model.learning_rate": {"low": 0.002, "high": 0.02, "log": True},
                "model.network.conv_channels": {"choices": [[16, 16], [32, 48]]}}


@pytest.fixture(scope="module")
def trec_poisoned(tmp_path_factory) -> Path:
    """A TREC slice whose test file is not parquet at all: reading it fails."""
    directory = write_slice("trec", tmp_path_factory.mktemp("trec"), {"train": 1200})
    (directory / "test.parquet").write_bytes(b"not a parquet file: the search must never open the test split")
    return directory


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["directory", "files"])
def test_a_search_uses_validation_only_writes_a_trainable_best_config_and_resumes(trec_poisoned, tmp_path, layout,
                                                                                 monkeypatch, caplog):
    from textcnn.data.datamodule import TextDataModule

    caplog.set_level("INFO", logger="textcnn")

    encoded = TextDataModule.encoded

    def no_test(self, role):
        assert role != "test", "a trial read the test split"
        return encoded(self, role)

    monkeypatch.setattr(TextDataModule, "encoded", no_test)
    data = ([f"--data.path={trec_poisoned}"] if layout == "directory" else
            [f"--data.train_file={trec_poisoned / 'train.parquet'}", f"--data.test_file={trec_poisoned / 'test.parquet'}"])
    root = tmp_path / "run"
    argv = ["--search-space", str(_write(tmp_path / "space.yaml", SEARCH_SPACE)), "--config",
            str(ROOT / "configs" / "sst2.yaml"), *TINY_MODEL_ARGS, "--model.network.ngram_buckets=1024", *data,
            "--data.label_column=coarse_label", "--trainer.max_epochs=2", f"--trainer.default_root_dir={root}"]
    first = tune([*argv, "--trials", "2"])
    assert (root / "tune" / "study.db").is_file()
    assert first["trials"] == {"complete": 2, "pruned": 0, "failed": 0, "run_now": 2}
    assert 0.0 < first["best_score"] <= 1.0 and set(first["best_params"]) == set(SEARCH_SPACE)
    progress = [record.getMessage() for record in caplog.records if record.getMessage().startswith("trial ")]
    assert len(progress) == 2 and "val_acc" in progress[0] and "model.learning_rate=" in progress[0]

    resumed = tune([*argv, "--trials", "3"])  # the same command with a larger budget: one more trial
    assert resumed["trials"] == {"complete": 3, "pruned": 0, "failed": 0, "run_now": 1}
    assert resumed["best_score"] >= first["best_score"]
    assert tune([*argv, "--trials", "3"])["trials"]["run_now"] == 0
    assert sorted(path.name for path in (root / "tune").glob("trial_*")) == ["trial_0", "trial_1", "trial_2"]
    assert [Path(resumed["best_checkpoint"])] == list((root / "tune").glob("trial_*/**/*.ckpt"))  # the best one only

    best = Path(resumed["best_config"])
    assert best == root / "tune" / "best.yaml"
    config = build(["--config", str(best)], instantiate=False).config  # what textcnn train --config takes
    assert config.model.learning_rate == pytest.approx(resumed["best_params"]["model.learning_rate"])
    assert config.model.network.conv_channels == resumed["best_params"]["model.network.conv_channels"]
    assert config.trainer.max_epochs == 2 and config.data.label_column == "coarse_label"
    assert config.trainer.default_root_dir == str(root)  # the user's run directory, not a trial's

    other_space = _write(tmp_path / "other.yaml", {"model.learning_rate": {"low": 0.001, "high": 0.01}})
    with pytest.raises(UserInputError, match="holds a study of other search space"):
        tune([*argv, "--search-space", str(other_space)])
