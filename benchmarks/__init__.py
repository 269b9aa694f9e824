"""Measurement code: accuracy against Kim (2014) and linear baselines, training and inference speed,
streaming memory, ONNX export agreement and a load test of the server.

Not part of the installed package: it runs from a source checkout, through ``scripts/benchmark_*.py``
and ``scripts/load_test.py`` or as ``python -m benchmarks.<module>`` from the repository root, and
reads the datasets in ``../shared/data`` (``TEXTCNN_DATA_DIR`` names another folder, as for the tests).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository root: configs/, scripts/, textcnn/
DATA_DIR = Path(os.environ.get("TEXTCNN_DATA_DIR", ROOT.parent / "shared" / "data"))
