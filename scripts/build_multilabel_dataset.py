"""Thin entry point: build a multi-label dataset by joining 1-3 real texts of different classes.

    .venv/bin/python scripts/build_multilabel_dataset.py     # TREC questions → runs/data/trec_multilabel

The logic lives in ``textcnn.data.joined.build_joined_dataset``; see its docstring for how the
splits stay disjoint.
"""

import argparse
import json
import logging
import sys

from textcnn.errors import UserInputError
from textcnn.data.joined import build_joined_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="../shared/data/trec", help="a single-label dataset (directory or Hub id)")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="coarse_label")
    parser.add_argument("--output", default="runs/data/trec_multilabel", help="directory to write the parquet splits to")
    parser.add_argument("--max-parts", type=int, default=3, help="texts joined per example, at most")
    parser.add_argument("--sizes", type=int, nargs=3, default=[8000, 1000, 1000], metavar=("TRAIN", "VALIDATION", "TEST"),
                        help="examples per split")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        summary = build_joined_dataset(
            args.source, args.output, text_column=args.text_column, label_column=args.label_column,
            max_parts=args.max_parts, sizes=dict(zip(("train", "validation", "test"), args.sizes)), seed=args.seed,
        )
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
