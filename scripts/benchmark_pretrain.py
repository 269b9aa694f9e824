"""Thin entry point: `python scripts/benchmark_pretrain.py --help`; the logic lives in benchmarks/pretrain.py."""

import sys
from pathlib import Path

# benchmarks/ is measurement code that is not installed: import it from this source checkout
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.pretrain import main  # noqa: E402

if __name__ == "__main__":
    main()
