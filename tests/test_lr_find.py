"""``textcnn lr-find`` and ``--model.learning_rate=auto``: Lightning's range test over the run a config
describes, its plot, and the rate a training run then uses."""

import logging

import pytest

from textcnn import cli
from textcnn.errors import UserInputError
from textcnn.inference.checkpoint import read_checkpoint
from textcnn.training.lr_find import without_auto
from tests.conftest import ROOT, TINY_MODEL_ARGS


def test_auto_is_taken_off_the_command_line_in_either_spelling():
    assert without_auto(["--model.learning_rate=auto", "--x=1"]) == (["--x=1"], True)
    assert without_auto(["--model.learning_rate", "auto"]) == ([], True)
    assert without_auto(["--model.learning_rate", "0.01"]) == (["--model.learning_rate", "0.01"], False)


@pytest.mark.slow
def test_lr_find_suggests_a_rate_in_its_range_and_plots_it(sst2_slice, tmp_path):
    result = cli.lr_find(["--config", str(ROOT / "configs" / "sst2.yaml"), *TINY_MODEL_ARGS,
                          f"--data.path={sst2_slice}", f"--trainer.default_root_dir={tmp_path}",
                          "--num-training", "30", "--min-lr", "1e-4", "--max-lr", "0.5"])
    assert 1e-4 <= result["suggested_learning_rate"] <= 0.5 and 10 <= result["batches_run"] <= 30
    image = pytest.importorskip("matplotlib.image").imread(result["plot"])
    assert result["plot"] == str(tmp_path / "lr_find.png") and image[..., :3].std() > 0.05
    assert not (tmp_path / "lightning_logs").exists()  # the test run leaves no run directory behind
    again = cli.lr_find(["--config", str(ROOT / "configs" / "sst2.yaml"), *TINY_MODEL_ARGS,
                         f"--data.path={sst2_slice}", f"--trainer.default_root_dir={tmp_path}", "--num-training", "20"])
    assert again["plot"] == str(tmp_path / "lr_find-1.png")  # the first plot is kept
    with pytest.raises(UserInputError, match="--min-lr < --max-lr"):
        cli.lr_find([*TINY_MODEL_ARGS, f"--data.path={sst2_slice}", "--min-lr", "1", "--max-lr", "0.1"])


@pytest.mark.slow
def test_train_with_auto_uses_the_rate_it_found(sst2_slice, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="textcnn"):
        report = cli.train(["--config", str(ROOT / "configs" / "sst2.yaml"), *TINY_MODEL_ARGS,
                            f"--data.path={sst2_slice}", "--trainer.max_epochs=1", "--model.learning_rate=auto",
                            f"--trainer.default_root_dir={tmp_path}"])
    lines = [record.getMessage() for record in caplog.records if record.getMessage().startswith("learning rate: ")]
    assert len(lines) == 1 and "found by the range test" in lines[0]
    rate = read_checkpoint(report["checkpoint"])["hyper_parameters"]["learning_rate"]
    assert f"{rate:.2e}" in lines[0] and rate != 3e-3  # not the config's own rate
