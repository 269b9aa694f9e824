"""Thin entry point: `python scripts/serve.py --help`; the logic lives in textcnn.cli."""

from textcnn.cli import exit_after, serve_main

if __name__ == "__main__":
    exit_after(serve_main)
