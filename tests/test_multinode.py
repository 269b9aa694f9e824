"""Two "nodes" on one machine (loopback, gloo): ``scripts/torchrun_two_nodes.sh`` trains one config into
one checkpoint with results printed once, a streamed corpus is dealt out across the nodes, every row to
one rank, and ``scripts/slurm_train.sbatch`` runs its two tasks as one DDP job (srun played by
``tests/fake_srun.sh``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_slice

TRAIN, VALIDATION, TEST = 301, 101, 150  # an odd training split: one row is left out of each round
EPOCHS = 2
TIMEOUT_S = 240
TINY = ["--model.network.embed_dim=16", "--model.network.embedding_mode=rand", "--data.pretrained_vectors=null",
        "--model.network.conv_channels=[16]", "--model.network.kernel_sizes=[3]", "--model.learning_rate=0.003",
        "--data.batch_size=32", f"--trainer.max_epochs={EPOCHS}", "--early_stopping.patience=100",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]

pytestmark = pytest.mark.slow  # every test starts two torchrun agents and their workers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_two_nodes(data: Path, base: Path, *extra: str, slurm: bool = False) -> subprocess.CompletedProcess:
    """The torchrun script (or the SLURM one), in a session of its own so that a timeout stops both
    nodes and their workers."""
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "PATH": os.pathsep.join([venv_bin, os.environ["PATH"]]),
           "TORCHRUN": str(Path(venv_bin) / "torchrun")}
    arguments = ["--config", str(ROOT / "configs" / "sst2.yaml"), *TINY, f"--data.path={data}",
                 f"--data.tokenizer_cache_dir={base / 'tokenizers'}", f"--trainer.default_root_dir={base / 'runs'}",
                 *extra]
    command = [str(ROOT / "scripts" / "torchrun_two_nodes.sh"), str(free_port()), *arguments]
    if slurm:
        command, env = ["bash", str(ROOT / "scripts" / "slurm_train.sbatch"), *arguments], {**env, **slurm_job(base)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"the two nodes did not finish in {TIMEOUT_S} s:\n{stderr.decode()[-4000:]}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    result = subprocess.CompletedProcess(command, process.returncode, stdout.decode(), stderr.decode())
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def slurm_job(base: Path) -> dict[str, str]:
    """What SLURM sets for a job of 2 nodes × 1 task, with srun played by tests/fake_srun.sh."""
    bin_dir = base / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").symlink_to(ROOT / "tests" / "fake_srun.sh")
    return {"PATH": os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]]),
            "PYTHON": sys.executable, "TEXTCNN_ACCELERATOR": "cpu", "SLURM_NNODES": "2", "SLURM_NTASKS_PER_NODE": "1",
            "SLURM_NTASKS": "2", "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "textcnn", "SLURM_NODELIST": "127.0.0.1",
            "MASTER_PORT": str(free_port())}


@pytest.fixture(scope="module")
def small_slice(tmp_path_factory) -> Path:
    return write_slice("sst2", tmp_path_factory.mktemp("two_nodes_data"),
                       {"train": TRAIN, "validation": VALIDATION, "test": TEST})


def test_two_torchrun_nodes_write_one_checkpoint_and_print_results_once(small_slice, tmp_path):
    result = run_two_nodes(small_slice, tmp_path)
    report = json.loads(result.stdout)  # one JSON document: rank 1 printed nothing
    assert report["num_examples"] == TEST and 0 <= report["accuracy"] <= 1
    assert result.stderr.count("best checkpoint:") == 1
    assert result.stderr.count("trained the tokenizer") == 1
    assert result.stderr.count("RANK=1: using the tokenizer rank 0 trained") == 1
    assert len(list((tmp_path / "tokenizers").iterdir())) == 1
    [version] = (tmp_path / "runs" / "lightning_logs").iterdir()  # one run directory, rank 0's
    checkpoints = sorted(p.name for p in (version / "checkpoints").iterdir())
    assert checkpoints[1:] == ["last.ckpt", "tokenizer.json"] and checkpoints[0].startswith("best-")
    assert report["checkpoint"] == str(version / "checkpoints" / checkpoints[0])


def test_two_torchrun_nodes_stream_each_row_to_one_rank(small_slice, tmp_path):
    """data.streaming over a parquet directory (ClassLabel labels): per epoch the ranks' training rows
    are equal shares, none twice, all but the one odd row; validation rows each evaluated once."""
    recorder = {"class_path": "tests.ddp_helpers.RecordStreamShares", "init_args": {"directory": str(tmp_path / "rec")}}
    run_two_nodes(small_slice, tmp_path, "--data.streaming=true", "--data.shuffle_buffer_size=64",
                  "--data.eval_batch_size=50", f"--trainer.callbacks=[{json.dumps(recorder)}]")
    ranks = [json.loads((tmp_path / "rec" / f"stream-rank-{r}.json").read_text()) for r in range(2)]
    every = {role: Counter(map(tuple, rows)) for role, rows in ranks[0]["all"].items()}
    assert sum(every["train"].values()) == TRAIN and sum(every["validation"].values()) == VALIDATION
    for epoch in map(str, range(EPOCHS)):
        train = [Counter(map(tuple, r["seen"]["train"][epoch])) for r in ranks]
        assert [sum(share.values()) for share in train] == [TRAIN // 2, TRAIN // 2]
        together = train[0] + train[1]
        assert together <= every["train"]  # no row more often than the corpus holds it
        assert sum((every["train"] - together).values()) == TRAIN % 2  # only the odd row is left out
        validation = [Counter(map(tuple, r["seen"]["validation"][epoch])) for r in ranks]
        assert validation[0] + validation[1] == every["validation"]
        assert all(validation)  # both ranks evaluated a share
    assert ranks[0]["seen"]["train"]["0"] != ranks[0]["seen"]["train"]["1"]  # a new shuffle each epoch


def test_the_slurm_recipe_runs_its_two_tasks_as_one_ddp_job(small_slice, tmp_path):
    recorder = {"class_path": "tests.ddp_helpers.RecordShares", "init_args": {"directory": str(tmp_path / "rec")}}
    result = run_two_nodes(small_slice, tmp_path, "--trainer.max_epochs=1",
                           f"--trainer.callbacks=[{json.dumps(recorder)}]", slurm=True)
    assert json.loads(result.stdout)["num_examples"] == TEST  # printed once, by rank 0
    assert result.stderr.count("SLURM_PROCID=1: using the tokenizer rank 0 trained") == 1
    ranks = [json.loads((tmp_path / "rec" / f"rank-{r}.json").read_text()) for r in range(2)]
    assert [(r["rank"], r["world_size"], r["mismatches"]) for r in ranks] == [(0, 2, 0), (1, 2, 0)]
    seen = [i for r in ranks for batch in r["seen"]["train"]["0"] for i in batch]
    assert sorted(seen) == list(range(TRAIN))  # disjoint shares that together cover the split
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
