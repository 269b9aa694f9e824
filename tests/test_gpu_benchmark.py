"""benchmarks/gpu.sh's dry run (``--device cpu``) on tiny settings: every stage runs and lands in the JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, dataset_dir

pytestmark = pytest.mark.slow  # trains three tiny models in child processes


def test_the_cpu_dry_run_writes_every_stage(tmp_path):
    dataset_dir("sst2"), dataset_dir("imdb")
    from benchmarks.gpu import STAGES

    output = tmp_path / "gpu.md"
    command = [str(ROOT / "benchmarks" / "gpu.sh"), "--device", "cpu", "--tiny", "--sst2-rows", "300",
               "--imdb-rows", "200", "--imdb-batches", "3", "--sst2-batches", "3", "--texts", "600",
               "--variants", "fp32", "--output", str(output)]
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stderr.lstrip().startswith("device: ")  # the device check comes first
    results = json.loads(output.with_suffix(".json").read_text())
    assert set(STAGES) <= set(results)
    assert results["device"]["requested"] == "cpu" and results["device"]["peaks"]["fp32"] > 0
    assert results["gpu_tests"]["returncode"] == 0 and "skipped" in results["gpu_tests"]["summary"]
    [whole] = results["sst2_whole_command"]["runs"]
    assert whole["accelerator"] == "cpu" and whole["total_s"] > 0 and 0 <= whole["test_accuracy"] <= 1
    for stage in ("imdb_epoch", "training_mfu"):
        assert results[stage]["fp32"]["examples_per_s"] > 0 and results[stage]["fp32"]["mfu"] >= 0
    assert results["inference"]["batch_512"]["texts_per_s"] > 0
    assert results["inference"]["single_text_ms"]["p50"] > 0
    table = output.read_text()
    assert table == result.stdout and table.count("\n| ") >= 6
