"""Thin entry point: `python scripts/evaluate.py --help`; the logic lives in textcnn.cli."""

from textcnn.cli import evaluate_main

if __name__ == "__main__":
    evaluate_main()
