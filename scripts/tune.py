"""Thin entry point: `python scripts/tune.py --help`; the logic lives in textcnn.training.tune."""

from textcnn.cli import exit_after, tune_main

if __name__ == "__main__":
    exit_after(tune_main)
