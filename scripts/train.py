"""Thin entry point: `python scripts/train.py --help`; the logic lives in textcnn.cli."""

from textcnn.cli import exit_after, train_main

if __name__ == "__main__":
    exit_after(train_main)
