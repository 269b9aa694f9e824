"""Measurement code: accuracy against Kim (2014) and linear baselines, training and inference speed,
streaming memory, ONNX export agreement and a load test of the server.

Not part of the installed package: it runs from a source checkout, through ``scripts/benchmark_*.py``
and ``scripts/load_test.py`` or as ``python -m benchmarks.<module>`` from the repository root, and
reads the datasets in ``../shared/data`` (``TEXTCNN_DATA_DIR`` names another folder, as for the tests).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]  # the repository root: configs/, scripts/, textcnn/
DATA_DIR = Path(os.environ.get("TEXTCNN_DATA_DIR", ROOT.parent / "shared" / "data"))


def run_in_child(module: str, args: Sequence[str], cwd: Optional[Path] = None, timeout: Optional[float] = None) -> dict:
    """``python -m benchmarks.<module> ARGS`` in a fresh process, so that it has its own peak memory;
    returns the JSON object it prints last. ``benchmarks`` is importable there from any ``cwd``."""
    search_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *args], capture_output=True, text=True,
                            cwd=cwd, timeout=timeout, env={**os.environ, "PYTHONPATH": search_path})
    if result.returncode:
        raise RuntimeError(f"benchmarks.{module} {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def write_outputs(output: Optional[str], markdown: str, results: object) -> None:
    """A benchmark's Markdown table at ``output`` and its figures as JSON beside it (``.json``); nothing
    without ``output``."""
    if output:
        Path(output).write_text(markdown + "\n", encoding="utf-8")
        Path(output).with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def mean_sd(runs: list[dict], key: str) -> str:
    """``runs``' mean ``key`` as a percentage, ± the standard deviation across them where there are several."""
    values = [run[key] for run in runs]
    spread = f" ± {statistics.stdev(values):.1%}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.1%}{spread}"
