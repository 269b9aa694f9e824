"""ONNX exports (float32 and int8) vs PyTorch on a whole dataset split: accuracy, largest logit
difference and label agreement, whether logits depend on the batch size, texts/s at several batch
sizes (tokenization included) and size on disk. Prints JSON; ``--output`` also writes the table as
Markdown. Accuracy and agreement are those of the first batch size.

    .venv/bin/python scripts/benchmark_export.py --checkpoint CKPT --export CKPT_DIR/NAME-onnx \
        --int8 CKPT_DIR/NAME-int8-onnx --int8-all-operators --output runs/export-benchmark.md

Every predictor runs with torch's thread count (``OMP_NUM_THREADS``), ONNX Runtime included.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Optional

import datasets
import torch

import textcnn
from benchmarks import DATA_DIR
from textcnn.inference.export import quantize_int8
from textcnn.inference.onnx import OnnxPredictor


def timed_logits(predictor, texts, batch_size: int, repeats: int = 3):
    """Logits of ``texts`` and the best of ``repeats`` rates in texts/s, encoding included."""
    predictor.logits(texts[:batch_size], batch_size)  # warm-up
    best, logits = float("inf"), None
    for _ in range(repeats):
        began = time.perf_counter()
        logits = predictor.logits(texts, batch_size)
        best = min(best, time.perf_counter() - began)
    return logits, len(texts) / best


def size_on_disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file()) if path.is_dir() else path.stat().st_size


def measure(name: str, predictor, texts: list[str], labels: torch.Tensor, reference: Optional[torch.Tensor],
            batch_sizes: list[int], repeats: int, model_file: Optional[Path]) -> dict:
    rates, logits, by_batch = {}, None, 0.0
    for batch_size in batch_sizes:
        batched, rate = timed_logits(predictor, texts, batch_size, repeats)
        logits = batched if logits is None else logits
        by_batch = max(by_batch, float((batched - logits).abs().max()))
        rates[str(batch_size)] = round(rate, 1)
    row = {"name": name, "accuracy": float((logits.argmax(-1) == labels).float().mean()), "texts_per_s": rates,
           "max_abs_diff_between_batch_sizes": by_batch,
           "model_bytes": model_file.stat().st_size if model_file else None,
           "directory_bytes": size_on_disk(model_file.parent) if model_file else None}
    if reference is not None:
        row["max_abs_diff_vs_pytorch"] = float((logits - reference).abs().max())
        row["label_agreement_vs_pytorch"] = float((logits.argmax(-1) == reference.argmax(-1)).float().mean())
    return row


def all_operators_int8(export: Path, scratch: Path) -> Path:
    """The float32 export quantized with every operator ONNX Runtime can (ConvInteger too), beside it."""
    for name in ("tokenizer.json", "metadata.json"):
        shutil.copy(export / name, scratch / name)
    quantize_int8(export / "model.onnx", scratch / "model.onnx", operators=None)
    return scratch


def markdown(result: dict) -> str:
    rows = result["predictors"]
    sizes = result["batch_sizes"]
    lines = ["| | " + " | ".join(row["name"] for row in rows) + " |", "|---|" + "---|" * len(rows)]

    def line(label, values):
        lines.append(f"| {label} | " + " | ".join(values) + " |")

    line(f"accuracy, {result['split']} ({result['texts']:,} texts)", [f"{100 * r['accuracy']:.2f}%" for r in rows])
    line("label agreement with PyTorch", [f"{100 * r['label_agreement_vs_pytorch']:.2f}%"
                                          if "label_agreement_vs_pytorch" in r else "—" for r in rows])
    line("max \\|logit − PyTorch's\\|", [f"{r['max_abs_diff_vs_pytorch']:.2g}" if "max_abs_diff_vs_pytorch" in r
                                         else "—" for r in rows])
    line(f"max \\|logit at batch {sizes[0]} − at other sizes\\|", [f"{r['max_abs_diff_between_batch_sizes']:.2g}"
                                                                  for r in rows])
    for size in sizes:
        line(f"texts/s, batch {size} (with tokenization)", [f"{r['texts_per_s'][str(size)]:,.0f}" for r in rows])
    line("model.onnx on disk", [f"{r['model_bytes'] / 1e6:.1f} MB" if r["model_bytes"] else "—" for r in rows])
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--export", required=True, help="float32 directory written by textcnn export")
    parser.add_argument("--int8", help="directory written by textcnn export --quantize int8")
    parser.add_argument("--int8-all-operators", action="store_true",
                        help="also measure int8 with every operator quantized, convolutions included (not shipped)")
    parser.add_argument("--dataset", default=str(DATA_DIR / "sst2"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32, 512])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", help="also write the table as Markdown to this file")
    args = parser.parse_args()
    rows = datasets.load_dataset(args.dataset, split=args.split)
    texts = [text or "" for text in rows[args.text_column]]
    labels = torch.tensor(rows[args.label_column])
    threads = torch.get_num_threads()
    pytorch = textcnn.load(args.checkpoint)
    reference = pytorch.logits(texts)
    results = [measure("PyTorch (checkpoint)", pytorch, texts, labels, None, args.batch_sizes, args.repeats, None)]
    exports = [("ONNX Runtime float32", args.export), ("ONNX Runtime int8", args.int8)]
    with tempfile.TemporaryDirectory() as scratch:
        if args.int8_all_operators:
            exports.append(("int8, convolutions too", all_operators_int8(Path(args.export), Path(scratch))))
        for name, directory in exports:
            if directory:
                predictor = OnnxPredictor(directory, threads=threads)
                results.append(measure(name, predictor, texts, labels, reference, args.batch_sizes, args.repeats,
                                       Path(directory) / "model.onnx"))
    result = {"dataset": Path(args.dataset).name, "split": args.split, "texts": len(texts), "threads": threads,
              "batch_sizes": args.batch_sizes, "predictors": results}
    print(json.dumps(result, indent=2))
    if args.output:
        Path(args.output).write_text(markdown(result), encoding="utf-8")


if __name__ == "__main__":
    main()
