"""Thin entry point: `python scripts/evaluate.py --help`; the logic lives in textcnn.cli."""

from textcnn.cli import exit_after, evaluate_main

if __name__ == "__main__":
    exit_after(evaluate_main)
