"""Thin entry point: `python scripts/predict.py --help`; the logic lives in textcnn.cli."""

from textcnn.cli import exit_after, predict_main

if __name__ == "__main__":
    exit_after(predict_main)
