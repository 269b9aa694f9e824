"""``python -m textcnn COMMAND ...``: the ``textcnn`` command, for environments without its script on PATH."""

from textcnn.cli import console_main

if __name__ == "__main__":
    console_main()
