"""Thin entry point: `python scripts/push_to_hub.py --help`; the logic lives in textcnn.cli."""

from textcnn.cli import push_to_hub_main

if __name__ == "__main__":
    push_to_hub_main()
