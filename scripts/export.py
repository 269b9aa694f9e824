"""Thin entry point: `python scripts/export.py --help`; the logic lives in textcnn.cli."""

from textcnn.cli import export_main

if __name__ == "__main__":
    export_main()
