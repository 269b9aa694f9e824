"""Speed benchmark: the machine's ceiling, textcnn training and inference, and two peers, in one run.

    .venv/bin/python scripts/benchmark_speed.py --checkpoint runs/sst2/lightning_logs/version_0/checkpoints/last.ckpt

Prints a markdown report (also written to ``--output``). Training figures come from separate
processes so each has its own peak RSS; model FLOP utilisation (MFU) counts only real tokens
(:mod:`benchmarks.flops`) against a large fp32 ``torch.matmul`` on the same machine. The step
ablations and the profile live in :mod:`benchmarks.speed_ablations`, the peers in
:mod:`benchmarks.speed_peers`.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import pytorch_lightning as pl
import torch

from benchmarks import DATA_DIR, ROOT, run_in_child
from benchmarks.flops import TRAINING_FLOPS_PER_FORWARD, forward_flops
from benchmarks.speed_ablations import training_step_ablations
from benchmarks.speed_peers import fasttext_peer, reference_textcnn


def matmul_flops_per_second(dtype: torch.dtype, size: int = 2048, repeats: int = 10, device: str = "cpu") -> float:
    a, b = (torch.randn(size, size, dtype=dtype, device=device) for _ in range(2))
    torch.matmul(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        torch.matmul(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def synchronize(device: str) -> None:
    """Wait for queued GPU work, so that a timer reads the work's end, not its launch."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


# -- textcnn training, one process per measurement ---------------------------------------------
class EpochTimer(pl.Callback):
    """Wall time and batch shapes (rows, padded length) of each training epoch."""

    def __init__(self):
        self.seconds: list[float] = []
        self.shapes: list[list[tuple[int, int]]] = []

    def on_train_epoch_start(self, trainer, module):
        self.shapes.append([])
        self._start = time.perf_counter()

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.shapes[-1].append(batch["input_ids"])  # its shape as run (packed or not) is read after the epoch

    def resolve_shapes(self, model) -> None:
        """Each batch's (rows, length) as the network ran it: packed or padded."""
        with torch.no_grad():
            self.shapes[-1] = [tuple(packed.ids.shape) if (packed := model.packed_batch(ids)) is not None else tuple(ids.shape)
                               for ids in self.shapes[-1]]

    def on_train_epoch_end(self, trainer, module):
        self.seconds.append(time.perf_counter() - self._start)


def measure_training(config: str, overrides: list[str], batches: Optional[int], precision: str,
                     accelerator: str = "cpu", compile_model: bool = False) -> dict:
    """Runs in a child process: the config's model and data trained for 1 warm-up epoch (or
    ``batches``), then one more timed, without validation; ``overrides``: training-CLI arguments;
    ``compile_model``: the network wrapped in ``torch.compile`` (dynamic shapes) before fitting."""
    from textcnn.training.build import build

    timer = EpochTimer()
    with tempfile.TemporaryDirectory() as root:  # a tokenizer trained afresh, and nothing kept
        args = ["--config", config, *overrides, f"--trainer.default_root_dir={root}", "--trainer.max_epochs=2",
                "--trainer.limit_val_batches=0", "--trainer.logger=false", f"--trainer.precision={precision}",
                f"--trainer.accelerator={accelerator}", "--trainer.enable_progress_bar=false",
                "--trainer.enable_model_summary=false"]
        args += [f"--trainer.limit_train_batches={batches}"] if batches else []
        cli = build(args, callbacks=[timer], model_selection=False)
        data, model = cli.datamodule, cli.model
        lengths = [len(ids) for ids in data.encoded("train")["input_ids"]]
        network = model.model
        if compile_model:
            model.model = torch.compile(network, dynamic=True)
        cli.trainer.fit(model, datamodule=data)
        model.model = network
    timer.resolve_shapes(model.model)
    seconds = timer.seconds[-1]
    examples = min(len(lengths), (batches or len(lengths)) * data.hparams.batch_size)
    share = examples / len(lengths)  # of an epoch; a random sample of it when ``batches`` is set
    tokens = sum(lengths) * share
    flops = TRAINING_FLOPS_PER_FORWARD * sum(forward_flops(model.model, n) for n in lengths) * share
    executed = TRAINING_FLOPS_PER_FORWARD * sum(rows * forward_flops(model.model, length)
                                                for rows, length in timer.shapes[-1])
    return {
        "examples": examples, "epoch_examples": len(lengths), "seconds": seconds,
        "examples_per_s": examples / seconds, "tokens_per_s": tokens / seconds,
        "flops_per_s": flops / seconds, "flops_per_example": flops / examples,
        "executed_flops_per_s": executed / seconds, "steps": len(timer.shapes[-1]), "real_token_share": tokens / sum(r * n for r, n in timer.shapes[-1]),
        "epoch_seconds": seconds * len(lengths) / examples,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_child(**kwargs) -> dict:
    """One measurement (``measure_training``'s arguments, or ``ablations=True``) in a process of its own."""
    return run_in_child("speed", ["--child", json.dumps(kwargs)], cwd=ROOT, timeout=3600)


# -- inference ----------------------------------------------------------------------------------
def measure_inference(checkpoint: str, texts: list[str], ceiling: float, device: str = "cpu") -> dict:
    import textcnn
    from textcnn.tokenizer import encode

    predictor = textcnn.load(checkpoint, device=device)
    lengths = [len(ids) for ids in encode(predictor.tokenizer, texts, predictor.max_length)]
    flops_per_text = statistics.fmean(forward_flops(predictor.model, n) for n in lengths)
    results = {}
    for batch_size in (1, 32, 512):
        sample = texts if batch_size > 1 else texts[:300]
        predictor.predict(sample[:batch_size], batch_size=batch_size)  # warm-up
        start = time.perf_counter()
        predictor.predict(sample, batch_size=batch_size)
        per_second = len(sample) / (time.perf_counter() - start)
        results[f"batch_{batch_size}"] = {"texts_per_s": per_second, "mfu": per_second * flops_per_text / ceiling}
    latencies = []
    for text in texts[:300]:
        start = time.perf_counter()
        predictor.predict_proba([text])
        latencies.append(1000 * (time.perf_counter() - start))
    quantiles = statistics.quantiles(latencies, n=100)
    results["single_text_ms"] = {"p50": quantiles[49], "p99": quantiles[98]}
    return results


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":  # one measurement, in a process of its own
        child = json.loads(sys.argv[2])
        print(json.dumps(training_step_ablations() if child.pop("ablations", False) else measure_training(**child)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a checkpoint of configs/sst2.yaml for inference")
    parser.add_argument("--imdb-batches", type=int, default=60, help="IMDB training batches to time")
    parser.add_argument("--reference-epochs", type=int, default=3)
    parser.add_argument("--output", help="also write the report here")
    args = parser.parse_args()

    ceiling = {"fp32": matmul_flops_per_second(torch.float32), "bf16": matmul_flops_per_second(torch.bfloat16)}
    bucketed = ["--data.bucket_by_length=true"]
    sst2 = run_child(config="configs/sst2.yaml", overrides=[], batches=None, precision="32-true")
    sst2_padded = run_child(config="configs/sst2.yaml", overrides=["--model.pack_batches=false"], batches=None,
                            precision="32-true")
    sst2_bucketed = run_child(config="configs/sst2.yaml", overrides=bucketed, batches=None, precision="32-true")
    sst2_bf16 = run_child(config="configs/sst2.yaml", overrides=bucketed, batches=None, precision="bf16-mixed")
    imdb = run_child(config="configs/imdb.yaml", overrides=bucketed, batches=args.imdb_batches, precision="32-true")
    # what the default recipe trains on IMDB (its reviews are documents) and what it trained before
    imdb_region = run_child(config="configs/imdb_region.yaml", overrides=[], batches=args.imdb_batches,
                            precision="32-true")
    imdb_sentence = run_child(config="configs/sst2.yaml", overrides=[f"--data.path={DATA_DIR / 'imdb'}"],
                              batches=args.imdb_batches, precision="32-true")
    ablations = run_child(ablations=True)
    import datasets

    test_texts = datasets.load_dataset(str(DATA_DIR / "sst2"), split="test")["text"]
    inference = measure_inference(args.checkpoint, test_texts, ceiling["fp32"])
    reference = reference_textcnn(args.reference_epochs)
    fast = fasttext_peer()

    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}. Command: `{' '.join(['.venv/bin/python', *sys.argv])}`",
        "",
        "| measure | value |",
        "|---|---|",
        f"| ceiling: fp32 matmul | {ceiling['fp32'] / 1e9:.0f} GFLOP/s |",
        f"| ceiling: bf16 matmul | {ceiling['bf16'] / 1e9:.0f} GFLOP/s |",
    ]
    runs = (
        ("SST-2 train fp32 (packed batches)", sst2, ceiling["fp32"]),
        ("SST-2 train fp32, padded batches (model.pack_batches=false)", sst2_padded, ceiling["fp32"]),
        ("SST-2 train fp32, length-bucketed", sst2_bucketed, ceiling["fp32"]),
        ("SST-2 train bf16-mixed, length-bucketed", sst2_bf16, ceiling["bf16"]),
        (f"IMDB (configs/imdb.yaml) train fp32, length-bucketed ({run_name(imdb)})", imdb, ceiling["fp32"]),
        (f"IMDB default recipe (configs/imdb_region.yaml: region embeddings, 1,024 tokens) train fp32, packed "
         f"({run_name(imdb_region)})", imdb_region, None),
        (f"IMDB sentence recipe, the default before (configs/sst2.yaml on IMDB, 512 tokens) train fp32, packed "
         f"({run_name(imdb_sentence)})", imdb_sentence, ceiling["fp32"]),
    )
    for name, run, peak in runs:
        lines += [f"| {name}: examples/s, tokens/s | {run['examples_per_s']:.0f}, {run['tokens_per_s']:.0f} |"]
        if peak is None:  # region windows are sums of table rows: no multiply-adds to rate against a matmul
            lines += [f"| {name}: real tokens / positions computed | {100 * run['real_token_share']:.0f}% |"]
        else:
            lines += [
                f"| {name}: FLOPs/example, MFU | {run['flops_per_example'] / 1e6:.1f} MFLOP, "
                f"{100 * run['flops_per_s'] / peak:.1f}% of {peak / 1e9:.0f} GFLOP/s |",
                f"| {name}: real tokens / positions computed, utilisation counting padding | "
                f"{100 * run['real_token_share']:.0f}%, {100 * run['executed_flops_per_s'] / peak:.1f}% |",
            ]
        lines += [f"| {name}: epoch time, peak RSS | {run['epoch_seconds']:.1f} s, {run['peak_rss_mb']:.0f} MB |"]
    for batch in (1, 32, 512):
        row = inference[f"batch_{batch}"]
        lines.append(f"| inference batch {batch} (with tokenization): texts/s, MFU | {row['texts_per_s']:.0f}, "
                     f"{100 * row['mfu']:.1f}% |")
    lines.append(f"| single text end to end: p50, p99 | {inference['single_text_ms']['p50']:.2f} ms, "
                 f"{inference['single_text_ms']['p99']:.2f} ms |")
    lines.append(f"| reference tutorial TextCNN: epoch time, test acc. after {reference['epochs']} epochs "
                 f"(padded to {reference['padded_length']}) | {reference['epoch_seconds']:.1f} s, "
                 f"{100 * reference['test_accuracy']:.1f}% |")
    lines.append(f"| textcnn epoch time vs reference | {reference['epoch_seconds'] / sst2['epoch_seconds']:.2f}× faster |")
    if fast:
        lines.append(f"| fastText (25 epochs, bigrams): train time, predict texts/s, test acc. | "
                     f"{fast['train_seconds']:.1f} s, {fast['texts_per_s']:.0f}, {100 * fast['test_accuracy']:.1f}% |")
    shipped = ablations["steps_ms"]["as shipped"]
    lines += ["", f"Training step on {ablations['batches']} real SST-2 batches (default network, forward + backward + "
              "AdamW), one change at a time:", "", "| variant | ms per step | vs shipped |", "|---|---|---|"]
    lines += [f"| {variant} | {ms:.1f} | {ms / shipped:.2f}× |" for variant, ms in ablations["steps_ms"].items()]
    loop_seconds = shipped / 1000 * sst2["steps"]
    lines += ["", f"SST-2 fp32 epoch through Lightning: {sst2['epoch_seconds']:.1f} s; the same number of bare steps: "
              f"{loop_seconds:.1f} s, so the Lightning loop, metrics, logging and data loading add "
              f"{sst2['epoch_seconds'] - loop_seconds:.1f} s ({100 * (sst2['epoch_seconds'] / loop_seconds - 1):.0f}%)."]
    lines += ["", "Where the shipped step's time goes (torch profiler, self time by operator family):", "",
              "| part | share of the step |", "|---|---|"]
    lines += [f"| {part} | {100 * share:.1f}% |" for part, share in ablations["profile_shares"].items()]
    report = "\n".join(lines)
    print(report)
    if args.output:
        Path(args.output).write_text(report + "\n", encoding="utf-8")


def run_name(run: dict) -> str:
    return f"{run['examples']} of {run['epoch_examples']} examples timed"


if __name__ == "__main__":
    main()
