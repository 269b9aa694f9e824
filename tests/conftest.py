"""Shared fixtures: small slices of the real datasets in ../shared/data and one tiny trained model."""

from __future__ import annotations

import os
from pathlib import Path

import datasets
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("TEXTCNN_DATA_DIR", ROOT.parent / "shared" / "data"))

# A model small enough to train in seconds on 2 CPU cores (embeddings from scratch: no GloVe to load).
TINY_MODEL_ARGS = [
    "--model.network.embed_dim=32",
    "--model.network.embedding_mode=rand",
    "--data.pretrained_vectors=null",
    "--data.max_length=64",  # SST-2 sentences reach it, so truncation is exercised
    # the recipe's few-labels schedule (batches of 16, a 64-feature n-gram bag) would quadruple the
    # steps and the n-gram parameters of every small test run
    "--data.batch_size=64",
    "--model.network.ngram_dim=16",
    "--model.network.conv_channels=[32, 48]",
    "--model.network.kernel_sizes=[3, 3]",
    "--model.network.dropout=0.3",
    "--model.network.embedding_dropout=0.1",
    "--model.learning_rate=0.003",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]


def dataset_dir(name: str) -> Path:
    """A benchmark dataset's local copy. Without the copies (a fresh clone) the tests that train on
    them are skipped, and the rest — every test that makes its own data or reads the fixtures of
    earlier releases — still run; CI (``CI=true``) has the copies, so there a missing one fails."""
    path = DATA_DIR / name
    if not path.is_dir():
        message = (f"needs the benchmark dataset {name} (not found in {DATA_DIR}); set TEXTCNN_DATA_DIR to a "
                   "folder of the benchmark datasets saved as local Hugging Face datasets (docs/getting-started.md)")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def pytest_report_header(config) -> list[str]:
    if DATA_DIR.is_dir():
        return [f"benchmark datasets: {DATA_DIR}"]
    return [f"benchmark datasets: not found in {DATA_DIR}; tests that train on them are skipped "
            "(set TEXTCNN_DATA_DIR to run them)"]


def unlabelled_text_lines_of_two_runs(caplog, train) -> tuple[list[str], list[str], dict]:
    """The ``unlabelled text:`` log lines of ``train()`` run twice (the second finds the first's
    cache), and the first run's report."""
    import logging

    runs = []
    with caplog.at_level(logging.INFO, logger="textcnn"):
        for _ in range(2):
            caplog.clear()
            report = train()
            runs.append(([record.getMessage() for record in caplog.records
                          if record.getMessage().startswith("unlabelled text:")], report))
    return runs[0][0], runs[1][0], runs[0][1]


def write_slice(name: str, target: Path, rows: dict[str, int]) -> Path:
    """The first ``rows[split]`` rows of each split of a shared dataset, as a local parquet dataset."""
    full = datasets.load_dataset(str(dataset_dir(name)))
    target.mkdir(parents=True, exist_ok=True)
    for split, count in rows.items():
        full[split].shuffle(seed=0).select(range(count)).to_parquet(str(target / f"{split}.parquet"))
    return target


def write_slice_with_unlabeled(name: str, target: Path, rows: dict[str, int], unlabeled: int) -> Path:
    """:func:`write_slice`, and the next ``unlabeled`` training texts after its training rows as a plain
    text file, ``reviews.txt``, one text per line and no labels."""
    write_slice(name, target, rows)
    train = datasets.load_dataset(str(dataset_dir(name)), split="train").shuffle(seed=0)
    texts = train.select(range(rows["train"], rows["train"] + unlabeled))["text"]
    (target / "reviews.txt").write_text("\n".join(" ".join(text.split()) for text in texts) + "\n", encoding="utf-8")
    return target


@pytest.fixture(scope="session")
def sst2_dir() -> Path:
    return dataset_dir("sst2")


@pytest.fixture(scope="session")
def sst2_slice(tmp_path_factory) -> Path:
    """2,000 training sentences of SST-2 with 300 validation and 600 test sentences."""
    return write_slice("sst2", tmp_path_factory.mktemp("sst2_slice"), {"train": 2000, "validation": 300, "test": 600})


@pytest.fixture(scope="session")
def trained(tmp_path_factory, sst2_slice) -> dict:
    """Train the tiny model on the SST-2 slice once (in-process); returns train()'s report."""
    from textcnn.cli import train

    root = tmp_path_factory.mktemp("run")
    return train(
        ["--config", str(ROOT / "configs" / "sst2.yaml"), *TINY_MODEL_ARGS, f"--data.path={sst2_slice}",
         "--trainer.max_epochs=4", f"--trainer.default_root_dir={root}"]
    )


@pytest.fixture(scope="session")
def checkpoint(trained) -> Path:
    return Path(trained["checkpoint"])


# The full suite (``make test``, CI) runs everything; the fast tier (``make test-fast``) leaves out
# every test that trains a model or starts processes. A test that uses one of these fixtures trains.
TRAINING_FIXTURES = {"trained", "trained_by_script", "trained_multilabel", "ddp_run"}


def pytest_configure(config) -> None:
    """In each of several test processes (pytest-xdist), torch gets its share of the cores: as many
    threads each as the whole machine has would make the processes take turns. The processes a test
    starts get the same share, so a run in a subprocess computes as the same run in the test does."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch

        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if TRAINING_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)
