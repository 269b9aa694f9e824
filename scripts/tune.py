"""Thin entry point: `python scripts/tune.py --help`; the logic lives in textcnn.training.tune."""

from textcnn.cli import tune_main

if __name__ == "__main__":
    tune_main()
