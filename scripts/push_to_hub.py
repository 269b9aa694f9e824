"""Thin entry point: `python scripts/push_to_hub.py --help`; the logic lives in textcnn.cli."""

from textcnn.cli import exit_after, push_to_hub_main

if __name__ == "__main__":
    exit_after(push_to_hub_main)
