"""Thin entry point: `python scripts/serve.py --help`; the logic lives in textcnn.cli."""

from textcnn.cli import serve_main

if __name__ == "__main__":
    serve_main()
