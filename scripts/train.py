"""Thin entry point: `python scripts/train.py --help`; the logic lives in textcnn.cli."""

from textcnn.cli import train_main

if __name__ == "__main__":
    train_main()
