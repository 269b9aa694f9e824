"""ONNX export vs PyTorch on a whole dataset split: largest logit difference, label agreement and
texts/s of both predictors. Prints JSON.

    .venv/bin/python scripts/benchmark_export.py --checkpoint CKPT --export CKPT_DIR/NAME-onnx
"""

from __future__ import annotations

import argparse
import json
import time

import datasets

import textcnn
from benchmarks import DATA_DIR


def timed_logits(predictor, texts, batch_size: int, repeats: int = 3):
    predictor.logits(texts[:batch_size], batch_size)  # warm-up
    best, logits = float("inf"), None
    for _ in range(repeats):
        began = time.perf_counter()
        logits = predictor.logits(texts, batch_size)
        best = min(best, time.perf_counter() - began)
    return logits, len(texts) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--export", required=True, help="directory written by scripts/export.py")
    parser.add_argument("--dataset", default=str(DATA_DIR / "sst2"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    texts = [text or "" for text in datasets.load_dataset(args.dataset, split=args.split)[args.text_column]]
    torch_logits, torch_speed = timed_logits(textcnn.load(args.checkpoint), texts, args.batch_size)
    onnx_logits, onnx_speed = timed_logits(textcnn.load(args.export), texts, args.batch_size)
    print(json.dumps({
        "texts": len(texts),
        "batch_size": args.batch_size,
        "max_abs_diff": float((onnx_logits - torch_logits).abs().max()),
        "label_agreement": float((onnx_logits.argmax(-1) == torch_logits.argmax(-1)).float().mean()),
        "pytorch_texts_per_s": round(torch_speed, 1),
        "onnx_texts_per_s": round(onnx_speed, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
