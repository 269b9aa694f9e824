"""Faults: a run killed with SIGKILL resumes to the same result; checkpoints are written atomically;
the same seed gives the same weights."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, TINY_MODEL_ARGS, write_slice
from textcnn.training.checkpoint_io import AtomicCheckpointIO
from textcnn.cli import train

EPOCHS = 4


@pytest.fixture(scope="module")
def small_slice(tmp_path_factory) -> Path:
    return write_slice("sst2", tmp_path_factory.mktemp("small"), {"train": 800, "validation": 100, "test": 200})


def train_args(data: Path, root: Path, *extra: str) -> list[str]:
    return ["--config", str(ROOT / "configs" / "sst2.yaml"), *TINY_MODEL_ARGS, f"--data.path={data}",
            f"--trainer.max_epochs={EPOCHS}", f"--trainer.default_root_dir={root}", "--early_stopping.patience=100",
            *extra]


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = weights(a), weights(b)
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


@pytest.mark.slow
def test_same_seed_same_data_gives_identical_weights(small_slice, tmp_path):
    runs = [train(train_args(small_slice, tmp_path / name, "--trainer.max_epochs=2")) for name in ("a", "b")]
    assert runs[0]["accuracy"] == runs[1]["accuracy"]
    assert_same_weights(*(Path(run["checkpoint"]).with_name("last.ckpt") for run in runs))


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_to_the_uninterrupted_result(small_slice, tmp_path):
    uninterrupted = train(train_args(small_slice, tmp_path / "clean"))
    last_of_uninterrupted = Path(uninterrupted["checkpoint"]).with_name("last.ckpt")
    assert torch.load(last_of_uninterrupted, weights_only=True)["epoch"] == EPOCHS - 1  # the latest, not the best

    killed_root = tmp_path / "killed"
    command = [sys.executable, "-m", "textcnn", "train", *train_args(small_slice, killed_root)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = killed_root / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)  # in the epoch after the first checkpoint
    assert process.wait() == -signal.SIGKILL
    saved_epoch = torch.load(last, map_location="cpu", weights_only=True)["epoch"]
    assert saved_epoch < EPOCHS - 1  # really interrupted before the end

    resumed = subprocess.run(
        [sys.executable, "-m", "textcnn", "train", *train_args(small_slice, killed_root),
         f"--ckpt_path={last}"],
        capture_output=True, timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr.decode()[-3000:]
    report = json.loads(resumed.stdout)
    assert report["accuracy"] == uninterrupted["accuracy"]
    assert report["per_class"] == uninterrupted["per_class"]
    final = max(killed_root.glob("lightning_logs/version_*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    assert_same_weights(final, last_of_uninterrupted)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["max", "min"])
def test_last_ckpt_holds_the_latest_epoch_whichever_epoch_is_the_best(small_slice, tmp_path, mode):
    """Monitoring the epoch number itself: with mode max every epoch is a new best, with min only the first."""
    run = train(train_args(small_slice, tmp_path, "--trainer.max_epochs=2", "--checkpoint.monitor=epoch",
                           f"--checkpoint.mode={mode}"))
    best = Path(run["checkpoint"])
    last = best.with_name("last.ckpt")
    assert torch.load(last, weights_only=True)["epoch"] == 1
    assert torch.load(best, weights_only=True)["epoch"] == (1 if mode == "max" else 0)
    assert sorted(p.name for p in best.parent.iterdir()) == sorted([best.name, "last.ckpt", "tokenizer.json"])


def test_a_crash_while_saving_keeps_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)

    def crash_midway(obj, file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(torch, "save", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["state_dict"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left behind


def test_a_checkpoint_of_another_format_version_is_refused(checkpoint, tmp_path):
    from textcnn.errors import UserInputError
    from textcnn.inference import load

    raw = torch.load(checkpoint, map_location="cpu", weights_only=True)
    raw["textcnn_format"] = 999
    torch.save(raw, tmp_path / "future.ckpt")
    with pytest.raises(UserInputError, match="checkpoint format 999"):
        load(tmp_path / "future.ckpt")


# -- a run that diverges -------------------------------------------------------------------------------
FIXTURE_CHECKPOINT = Path(__file__).parent / "fixtures" / "textcnn-0.1.0" / "sst2_tiny.ckpt"


@pytest.mark.slow
def test_a_diverging_run_stops_with_one_error_and_saves_no_best_checkpoint(small_slice, tmp_path):
    from textcnn.errors import UserInputError

    with pytest.raises(UserInputError, match=r"training diverged: the training loss is nan at epoch 0.*learning rate 1e\+30"):
        train(train_args(small_slice, tmp_path, "--model.learning_rate=1e30", "--model.optimizer=sgd"))
    assert not list(tmp_path.rglob("best-*.ckpt"))
    result = subprocess.run([sys.executable, "-m", "textcnn", "train",
                             *train_args(small_slice, tmp_path / "cli", "--model.learning_rate=1e30", "--model.optimizer=sgd")],
                            capture_output=True, timeout=300)
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in stderr, stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith("error: training diverged")


def test_an_epoch_whose_val_loss_is_nan_never_becomes_the_best_checkpoint(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from pytorch_lightning.callbacks import ModelCheckpoint

    from textcnn.training.callbacks import BestAndLastCheckpoint

    saved = []
    monkeypatch.setattr(ModelCheckpoint, "on_validation_end", lambda self, trainer, module: saved.append(trainer))
    callback = BestAndLastCheckpoint(dirpath=tmp_path, monitor="val_acc", mode="max")

    def epoch(val_acc: float, val_loss: float) -> SimpleNamespace:
        metrics = {"val_acc": torch.tensor(val_acc), "val_loss": torch.tensor(val_loss)}
        return SimpleNamespace(current_epoch=0, sanity_checking=False, callback_metrics=metrics)

    callback.on_validation_end(epoch(0.65, float("nan")), None)
    callback.on_validation_end(epoch(0.6, float("inf")), None)
    assert saved == []
    callback.on_validation_end(epoch(0.6, 0.7), None)
    assert len(saved) == 1


def test_a_checkpoint_with_nan_weights_is_refused_and_nan_scores_never_reach_users(tmp_path, monkeypatch):
    import textcnn
    from textcnn.errors import UserInputError
    from textcnn.inference.predictor import NonFiniteScoresError

    checkpoint = torch.load(FIXTURE_CHECKPOINT, weights_only=True)
    name = next(key for key in checkpoint["state_dict"] if key.startswith("model.") and key.endswith("weight"))
    checkpoint["state_dict"][name][0] = float("nan")
    torch.save(checkpoint, tmp_path / "diverged.ckpt")
    with pytest.raises(UserInputError, match="weights are not finite .*run that diverged"):
        textcnn.load(tmp_path / "diverged.ckpt")
    predictor = textcnn.load(FIXTURE_CHECKPOINT)  # a model whose scores overflow, e.g. an old export
    monkeypatch.setattr(predictor, "forward_ids", lambda ids: torch.full((len(ids), 2), float("nan")))
    with pytest.raises(NonFiniteScoresError, match="NaN or infinite scores for text 0"):
        predictor.predict(["fine"])

    import httpx

    from tests.test_serve import running
    from textcnn.inference.serve import create_app

    with running(create_app(predictor)) as url:
        response = httpx.post(f"{url}/predict", json={"texts": ["fine"]})
    assert response.status_code == 500 and "NaN or infinite scores" in response.json()["detail"]


def test_the_commands_print_strict_json(capsys):
    from textcnn.cli import _run, strict_json

    assert strict_json({"loss": float("nan"), "rows": [float("inf"), 1.5], "n": 3}) == '{"loss": null, "rows": [null, 1.5], "n": 3}'
    _run(lambda argv: {"accuracy": 0.65, "loss": float("nan")}, [], print_json=True)
    printed = json.loads(capsys.readouterr().out, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    assert printed == {"accuracy": 0.65, "loss": None}


# -- output directories --------------------------------------------------------------------------------
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_checkpoints_and_tokenizers_are_written_with_the_umask(tmp_path, umask, mode):
    """Another user (a service account) can read what training wrote, as with any file `open` creates."""
    from textcnn.atomic import write_text_atomic

    previous = os.umask(umask)
    try:
        AtomicCheckpointIO().save_checkpoint({"weights": torch.zeros(2)}, tmp_path / "best.ckpt")
        write_text_atomic(tmp_path / "tokenizer.json", "{}")
    finally:
        os.umask(previous)
    assert {path.name: path.stat().st_mode & 0o777 for path in tmp_path.iterdir()} == {
        "best.ckpt": mode, "tokenizer.json": mode}


def test_a_full_disk_while_saving_is_one_error_naming_the_directory(tmp_path, monkeypatch):
    import errno

    import textcnn.atomic
    from textcnn.errors import UserInputError

    def no_space(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(textcnn.atomic.os, "fsync", no_space)
    with pytest.raises(UserInputError) as error:
        AtomicCheckpointIO().save_checkpoint({"weights": torch.zeros(2)}, tmp_path / "checkpoints" / "last.ckpt")
    assert str(error.value) == (f"cannot write to {tmp_path / 'checkpoints'} (No space left on device); free some "
                                "space there, or set checkpoint.dirpath (or trainer.default_root_dir) to a directory "
                                "on another disk")
    assert list((tmp_path / "checkpoints").iterdir()) == []  # no temporary file left behind


def test_a_run_directory_that_cannot_be_written_is_refused_before_training(tmp_path):
    from textcnn.errors import UserInputError

    (tmp_path / "a-file").write_text("not a directory", encoding="utf-8")
    with pytest.raises(UserInputError, match=f"cannot write to {tmp_path / 'a-file' / 'run'} .*set "
                                             "trainer.default_root_dir to a directory you can write"):
        train(["--config", str(ROOT / "configs" / "sst2.yaml"), f"--trainer.default_root_dir={tmp_path / 'a-file' / 'run'}"])


@pytest.mark.parametrize("code", ["EROFS", "EACCES", "ENOSPC"])
def test_a_write_refused_inside_a_dependency_is_one_error_line(code, capsys):
    import errno

    from textcnn.cli import _run

    def logger_write(argv):  # what Lightning's CSV logger raises on a read-only or full disk
        raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)), "/runs/sst2/lightning_logs/metrics.csv")

    with pytest.raises(SystemExit) as exited:
        _run(logger_write, [], print_json=True)
    assert exited.value.code == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith(f"error: cannot write to /runs/sst2/lightning_logs ({os.strerror(getattr(errno, code))})")
    assert "\n" not in line and "trainer.default_root_dir" in line
