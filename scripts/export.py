"""Thin entry point: `python scripts/export.py --help`; the logic lives in textcnn.cli."""

from textcnn.cli import exit_after, export_main

if __name__ == "__main__":
    exit_after(export_main)
