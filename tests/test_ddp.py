"""Distributed training: a real 2-process DDP run on CPU (gloo), and the pieces that make it right —
disjoint shares of every batch, one tokenizer trained by rank 0, results printed once."""

import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, write_slice
from textcnn.data import distributed
from textcnn.data.samplers import EpochShuffle, LengthBatches, ShuffledBatches
from textcnn.data import TextDataModule
from textcnn.errors import UserInputError
from textcnn.training.evaluation import evaluate_checkpoint

TRAIN, VALIDATION, TEST = 301, 101, 150  # odd sizes: the two shares cannot be equal
BATCH_SIZE, EPOCHS, SEED = 32, 2, 42

pytestmark = pytest.mark.slow  # every test starts 2-process runs


def shares(make, world_size: int) -> list[list[list[int]]]:
    return [list(make(rank, world_size)) for rank in range(world_size)]


def assert_dealt_out(per_rank: list[list[list[int]]], size: int) -> None:
    """Every process got the same number of non-empty batches; together, every index once."""
    assert len({len(batches) for batches in per_rank}) == 1
    assert all(batch for batches in per_rank for batch in batches)
    seen = [i for batches in per_rank for batch in batches for i in batch]
    assert sorted(seen) == list(range(size))


@pytest.mark.parametrize(("size", "world_size"), [
    (size, world_size) for size in (1, 2, 3, 64, 65, 129, 130, 131, 301, 1000) for world_size in (1, 2, 3, 4)
    if size >= world_size
])
def test_each_process_gets_a_disjoint_share_and_together_every_example_once(size, world_size):
    lengths = [(7 * i) % 23 + 1 for i in range(size)]
    for epoch in (0, 1):
        order = EpochShuffle(size, SEED)
        order.set_epoch(epoch)
        samplers = {
            "shuffled": lambda r, w: ShuffledBatches(order, 32, r, w),
            "bucketed": lambda r, w: LengthBatches(lengths, 32, order, pool_batches=2, rank=r, world_size=w),
            "evaluation": lambda r, w: LengthBatches(lengths, 32, rank=r, world_size=w),
        }
        for name, make in samplers.items():
            per_rank = shares(make, world_size)
            assert_dealt_out(per_rank, size)
            assert all(len(make(r, world_size)) == len(per_rank[r]) for r in range(world_size)), name
            assert all(len(batch) <= 32 + world_size for batches in per_rank for batch in batches)


def test_one_process_gets_the_batches_it_always_got():
    """Single-process training is unchanged: the batches of DataLoader(sampler=EpochShuffle, batch_size)
    and of the length-bucketed sampler before it learned to shard."""
    lengths = [(7 * i) % 23 + 1 for i in range(1000)]
    order = EpochShuffle(len(lengths), SEED)
    order.set_epoch(3)
    permutation = list(order)
    assert list(ShuffledBatches(order, 64)) == [permutation[i : i + 64] for i in range(0, 1000, 64)]
    expected = []
    for start in range(0, 1000, 64 * 5):
        pool = sorted(permutation[start : start + 64 * 5], key=lengths.__getitem__)
        expected += [pool[i : i + 64] for i in range(0, len(pool), 64)]
    expected = [expected[i] for i in torch.randperm(len(expected), generator=order.generator(stream=1)).tolist()]
    assert list(LengthBatches(lengths, 64, order, pool_batches=5)) == expected


@pytest.fixture(scope="module")
def small_slice(tmp_path_factory) -> Path:
    return write_slice("sst2", tmp_path_factory.mktemp("ddp_data"), {"train": TRAIN, "validation": VALIDATION, "test": TEST})


def test_other_processes_wait_for_the_tokenizer_rank_zero_trained(small_slice, tmp_path, monkeypatch, caplog):
    caplog.set_level("INFO")
    for name in distributed.RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    trained = TextDataModule(path=str(small_slice), tokenizer_cache_dir=str(tmp_path)).tokenizer_json
    [saved] = tmp_path.glob("tokenizer-*.json")
    assert saved.read_text(encoding="utf-8") == trained

    monkeypatch.setenv("LOCAL_RANK", "1")
    loaded = TextDataModule(path=str(small_slice), tokenizer_cache_dir=str(tmp_path)).tokenizer_json
    assert loaded == trained and "LOCAL_RANK=1: using the tokenizer rank 0 trained" in caplog.text

    monkeypatch.setattr(distributed, "WAIT_S", 0.3)  # other settings: another file, which nobody writes
    waiting = TextDataModule(path=str(small_slice), tokenizer_cache_dir=str(tmp_path), max_vocab_size=100)
    with pytest.raises(UserInputError, match="LOCAL_RANK=1 waited 0 s.*data.tokenizer_cache_dir.*data.tokenizer_path"):
        waiting.tokenizer


def test_lightnings_distributed_sampler_is_refused_because_the_data_shards_itself(small_slice, tmp_path):
    from textcnn.training.build import build

    with pytest.raises(UserInputError, match="trainer.use_distributed_sampler=false"):
        build([f"--data.path={small_slice}", "--trainer.use_distributed_sampler=true",
               f"--trainer.default_root_dir={tmp_path}"], instantiate=False)


def launch_ddp(data: Path, base: Path, *extra: str) -> subprocess.CompletedProcess:
    """Train a tiny model with 2 CPU processes (Lightning's DDP launcher, gloo) from the script."""
    command = [
        sys.executable, "-m", "textcnn", "train", "--config", str(ROOT / "configs" / "sst2.yaml"),
        "--model.network.embed_dim=16", "--model.network.embedding_mode=rand", "--data.pretrained_vectors=null",
        "--model.network.conv_channels=[16]", "--model.network.kernel_sizes=[3]",
        "--model.learning_rate=0.003", f"--data.path={data}", f"--data.batch_size={BATCH_SIZE}",
        f"--data.tokenizer_cache_dir={base / 'tokenizers'}", f"--trainer.max_epochs={EPOCHS}",
        f"--trainer.default_root_dir={base / 'runs'}", "--trainer.strategy=ddp", "--trainer.devices=2",
        "--trainer.accelerator=cpu", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        "--early_stopping.patience=100", *extra,
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-4000:]
    return result


@pytest.fixture(scope="module")
def ddp_run(small_slice, tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("ddp")
    records = base / "records"
    recorder = {"class_path": "tests.ddp_helpers.RecordShares", "init_args": {"directory": str(records)}}
    result = launch_ddp(small_slice, base, f"--trainer.callbacks=[{json.dumps(recorder)}]")
    ranks = [json.loads((records / f"rank-{r}.json").read_text()) for r in range(2)]
    return {"stdout": result.stdout.decode(), "stderr": result.stderr.decode(), "root": base / "runs",
            "cache": base / "tokenizers", "ranks": ranks}


def test_ddp_processes_train_and_validate_on_disjoint_shares_that_cover_the_data(ddp_run):
    ranks = ddp_run["ranks"]
    assert [(r["rank"], r["world_size"], r["mismatches"]) for r in ranks] == [(0, 2, 0), (1, 2, 0)]
    for epoch in map(str, range(EPOCHS)):
        train = [r["seen"]["train"][epoch] for r in ranks]
        assert_dealt_out(train, TRAIN)
        assert len(train[0]) == -(-TRAIN // (2 * BATCH_SIZE))  # one step per global batch of 2 × 32
        order = EpochShuffle(TRAIN, SEED)  # deterministic: the (seed, epoch) shuffle, dealt out
        order.set_epoch(int(epoch))
        assert train == [list(ShuffledBatches(order, BATCH_SIZE, rank, 2)) for rank in range(2)]
        assert_dealt_out([r["seen"]["validation"][epoch] for r in ranks], VALIDATION)
    assert ranks[0]["seen"]["train"]["0"] != ranks[0]["seen"]["train"]["1"]  # a new shuffle each epoch


def test_ddp_processes_end_with_the_same_weights(ddp_run):
    """Every gradient, the lookup tables' sparse ones included, is averaged across the processes."""
    digests = [r["weights_sha256"] for r in ddp_run["ranks"]]
    assert digests[0] == digests[1]


def test_ddp_trains_the_tokenizer_once_and_writes_each_file_once(ddp_run):
    stderr, root = ddp_run["stderr"], ddp_run["root"]
    assert stderr.count("trained the tokenizer") == 1
    assert stderr.count("LOCAL_RANK=1: using the tokenizer rank 0 trained") == 1
    [cached] = ddp_run["cache"].iterdir()  # one file, no temporary left behind
    assert re.fullmatch(r"tokenizer-[0-9a-f]{20}\.json", cached.name)
    digest = hashlib.sha256(cached.read_bytes()).hexdigest()
    assert [r["tokenizer_sha256"] for r in ddp_run["ranks"]] == [digest, digest]
    [version] = (root / "lightning_logs").iterdir()
    checkpoints = sorted(p.name for p in (version / "checkpoints").iterdir())
    assert len(checkpoints) == 3 and checkpoints[1:] == ["last.ckpt", "tokenizer.json"]
    assert (version / "checkpoints" / "tokenizer.json").read_bytes() == cached.read_bytes()


def test_ddp_prints_results_once_and_they_match_the_saved_checkpoint(ddp_run):
    report = json.loads(ddp_run["stdout"])  # one JSON document: rank 1 printed nothing
    assert ddp_run["stderr"].count("best checkpoint:") == 1
    again = evaluate_checkpoint(report["checkpoint"], split="test")
    assert (again["accuracy"], again["per_class"], again["num_examples"]) == (
        report["accuracy"], report["per_class"], TEST)
    # validation accuracy, synced over both processes' shares, picked and named the best checkpoint
    logged = float(re.search(r"best-\d+-(\d\.\d{4})\.ckpt$", report["checkpoint"]).group(1))
    assert evaluate_checkpoint(report["checkpoint"], split="validation")["accuracy"] == pytest.approx(logged, abs=5e-5)


def test_a_ddp_run_resumed_from_a_checkpoint_ends_with_the_uninterrupted_weights(ddp_run, small_slice, tmp_path):
    """Every process's dropout stream is saved in the checkpoint and restored to the same process:
    one epoch, then a resumed second epoch, gives the weights of the two-epoch run bit for bit."""
    launch_ddp(small_slice, tmp_path, "--trainer.max_epochs=1")
    [first] = (tmp_path / "runs" / "lightning_logs").glob("version_*/checkpoints/last.ckpt")
    assert len(torch.load(first, weights_only=False)["callbacks"]["RandomState"]["ranks"]) == 2
    launch_ddp(small_slice, tmp_path, f"--ckpt_path={first}")
    resumed = torch.load(first.parents[2] / "version_1" / "checkpoints" / "last.ckpt", weights_only=True)
    [uninterrupted] = (ddp_run["root"] / "lightning_logs").glob("version_*/checkpoints/last.ckpt")
    expected = torch.load(uninterrupted, weights_only=True)
    assert resumed["epoch"] == expected["epoch"] == EPOCHS - 1
    for name, tensor in expected["state_dict"].items():
        assert torch.equal(resumed["state_dict"][name], tensor), name


def test_each_process_draws_its_own_dropout_masks(ddp_run):
    """Lightning seeds every process alike; rank 1 is re-seeded so the two processes' masks differ."""
    [last] = (ddp_run["root"] / "lightning_logs").glob("version_*/checkpoints/last.ckpt")
    states = torch.load(last, weights_only=False)["callbacks"]["RandomState"]["ranks"]
    assert not torch.equal(states[0]["torch"], states[1]["torch"])


def test_ddp_streaming_deals_each_process_a_disjoint_equal_share_of_the_stream(small_slice, tmp_path):
    """data.streaming with 2 processes: training rows dealt out in equal shares (the one odd row
    dropped), validation rows all evaluated once, though one process gets an extra batch."""
    recorder = {"class_path": "tests.ddp_helpers.RecordStreamShares", "init_args": {"directory": str(tmp_path / "rec")}}
    launch_ddp(small_slice, tmp_path, "--data.streaming=true", "--data.shuffle_buffer_size=64",
               "--data.eval_batch_size=50", f"--trainer.callbacks=[{json.dumps(recorder)}]")
    ranks = [json.loads((tmp_path / "rec" / f"stream-rank-{r}.json").read_text()) for r in range(2)]
    every = {role: Counter(map(tuple, rows)) for role, rows in ranks[0]["all"].items()}
    for epoch in map(str, range(EPOCHS)):
        train = [Counter(map(tuple, r["seen"]["train"][epoch])) for r in ranks]
        assert [sum(share.values()) for share in train] == [TRAIN // 2, TRAIN // 2]
        together = train[0] + train[1]
        assert together <= every["train"] and sum(together.values()) == TRAIN - 1
        validation = [Counter(map(tuple, r["seen"]["validation"][epoch])) for r in ranks]
        assert validation[0] + validation[1] == every["validation"]
    assert ranks[0]["seen"]["train"]["0"] != ranks[0]["seen"]["train"]["1"]  # a new shuffle each epoch
