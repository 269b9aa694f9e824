"""The GPU benchmark: every speed figure a GPU user plans with, from one command (``benchmarks/gpu.sh``).

Stages, in order, each a key of the JSON it writes: ``device`` (what was found, printed first),
``gpu_tests`` (``pytest -m gpu``), ``sst2_whole_command`` (the default recipe as ``textcnn train``,
start-up included, on the device and on the same machine's CPU), ``imdb_epoch`` (the IMDB document
recipe, ``configs/imdb_region.yaml``, timed on a bounded number of batches and scaled to an epoch),
``training_mfu`` (the default SST-2 network's training throughput as model FLOP utilisation against
the card's dense peak), and ``inference`` (batch 512 texts/s and single-text p50 latency). Training
stages run each precision variant (fp32, bf16-mixed, ``torch.compile``) that is asked for.

``--device cpu`` runs the same stages on small slices, as a dry run of the script on a machine
without a GPU; its figures are CPU figures. Useful FLOPs are counted by :mod:`benchmarks.flops`; the
training and inference measurements are :mod:`benchmarks.speed`'s, the whole command
:mod:`benchmarks.whole_command`'s.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import torch

from benchmarks import DATA_DIR, ROOT, write_outputs
from benchmarks.speed import matmul_flops_per_second, measure_inference, measure_training
from benchmarks.whole_command import run_textcnn

STAGES = ("device", "gpu_tests", "sst2_whole_command", "imdb_epoch", "training_mfu", "inference")
VARIANTS = {  # name: (trainer.precision, torch.compile), and which dense peak it is rated against
    "fp32": ("32-true", False),
    "bf16-mixed": ("bf16-mixed", False),
    "compile-bf16-mixed": ("bf16-mixed", True),
}
# Dense (no sparsity) peaks from the vendors' data sheets, TFLOP/s: (bf16 tensor cores, fp32 without
# tensor cores). Matched in order against torch.cuda.get_device_name(), so longer names come first.
KNOWN_PEAKS_TFLOPS = (
    ("H200", 989.0, 67.0),
    ("H100 PCIe", 756.0, 51.0),
    ("H100 NVL", 835.0, 60.0),
    ("H100", 989.0, 67.0),  # SXM
    ("A100", 312.0, 19.5),
    ("L40S", 362.0, 91.6),
    ("L4", 121.0, 30.3),
    ("A10", 125.0, 31.2),
)
# A small model and slice for the test of this script: every stage, in seconds rather than minutes.
TINY_TRAIN_ARGS = ["--model.network.embed_dim=16", "--model.network.embedding_mode=rand",
                   "--data.pretrained_vectors=null", "--model.network.conv_channels=[16]",
                   "--model.network.kernel_sizes=[3]", "--data.max_length=64"]


def known_peaks(device_name: str) -> Optional[dict]:
    """The card's dense bf16 and fp32 peaks in FLOP/s, or None for a card not in the table."""
    for name, bf16, fp32 in KNOWN_PEAKS_TFLOPS:
        if name.lower() in device_name.lower():
            return {"card": name, "bf16": bf16 * 1e12, "fp32": fp32 * 1e12, "source": "data sheet, dense"}
    return None


def check_device(device: str) -> dict:
    """What this machine has, and the peaks MFU is rated against: the card's data-sheet peaks where
    it is known, else (and on the CPU) the best large matmul measured here."""
    found = {"requested": device, "torch": torch.__version__, "cuda_available": torch.cuda.is_available(),
             "cpu": platform.processor() or platform.machine(), "cpu_threads": torch.get_num_threads()}
    if device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: torch sees no CUDA GPU here (torch.cuda.is_available() is False); "
                             "run with --device cpu for the dry run")
        properties = torch.cuda.get_device_properties(0)
        found.update(name=properties.name, memory_gib=round(properties.total_memory / 2**30, 1),
                     capability=f"{properties.major}.{properties.minor}", cuda=torch.version.cuda,
                     bf16_supported=torch.cuda.is_bf16_supported())
    else:
        found["name"] = found["cpu"]
    try:
        import onnxruntime

        found["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        found["onnxruntime_providers"] = []
    # a CPU without bf16 instructions takes seconds per large bf16 matmul: a smaller one there
    sizes = {"bf16": 4096, "fp32": 4096} if device == "cuda" else {"bf16": 512, "fp32": 1024}
    measured = {"bf16": matmul_flops_per_second(torch.bfloat16, size=sizes["bf16"], repeats=5, device=device),
                "fp32": matmul_flops_per_second(torch.float32, size=sizes["fp32"], repeats=5, device=device)}
    found["matmul_flops_per_s"] = measured
    found["peaks"] = known_peaks(found["name"]) if device == "cuda" else None
    # measured, the ceiling is the best matmul: on a CPU without bf16 instructions, bf16 work runs no faster than fp32
    ceiling = {"bf16": max(measured.values()), "fp32": measured["fp32"]}
    found["peaks"] = found["peaks"] or {**ceiling, "card": found["name"], "source": "measured matmul, best of bf16 and fp32"}
    return found


def run_gpu_tests() -> dict:
    """``pytest -m gpu`` in a fresh process: each test passes on a GPU, or skips with one line without."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider",
                             "tests/test_gpu.py"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    lines = result.stdout.strip().splitlines()
    # pytest's own count line ("1 skipped in 0.5s"), wherever options such as --durations put it
    counts = [line for line in lines if re.search(r"\d+ (passed|failed|skipped|errors?|deselected)\b.* in ", line)]
    return {"returncode": result.returncode, "summary": (counts or lines or [result.stderr[-500:]])[-1],
            "skipped": [line for line in lines if line.startswith("SKIPPED")],
            "seconds": time.perf_counter() - start}


def whole_commands(device: str, data_args: list[str], epochs: Optional[int], seed: int, work: Path) -> dict:
    """The default SST-2 recipe as a whole command on the device (each precision) and on the CPU."""
    runs = [("cuda", "32-true"), ("cuda", "bf16-mixed"), ("cpu", "32-true")] if device == "cuda" else [("cpu", "32-true")]
    results = []
    for accelerator, precision in runs:
        run_dir = work / f"whole-{accelerator}-{precision}"
        run_dir.mkdir()
        extra = [*data_args, f"--trainer.accelerator={accelerator}", "--trainer.devices=1",
                 f"--trainer.precision={precision}", "--trainer.enable_progress_bar=false"]
        run = run_textcnn(str(ROOT / "configs" / "sst2.yaml"), epochs, seed, run_dir, extra)
        results.append({"accelerator": accelerator, "precision": precision, **run})
    return {"config": "configs/sst2.yaml", "epochs": epochs or "the config's (early stopping)", "runs": results}


def training_variants(config: str, overrides: list[str], batches: Optional[int], device: str,
                      variants: list[str], peaks: dict) -> dict:
    """One :func:`benchmarks.speed.measure_training` per variant, with its MFU against the peak of its precision."""
    results = {}
    for name in variants:
        precision, compiled = VARIANTS[name]
        run = measure_training(config, overrides, batches, precision, accelerator=device, compile_model=compiled)
        peak = peaks["bf16" if "bf16" in precision else "fp32"]
        results[name] = {**run, "peak_flops_per_s": peak, "mfu": run["flops_per_s"] / peak}
    return results


def inference(checkpoint: str, device: str, texts: int, peak: float) -> dict:
    """Texts/s by batch size (tokenization included) and single-text latency, SST-2 test sentences."""
    import datasets

    sentences = list(datasets.load_dataset(str(DATA_DIR / "sst2"), split="test")["text"])
    sentences = (sentences * (1 + texts // len(sentences)))[:texts]
    return {"texts": len(sentences), **measure_inference(checkpoint, sentences, peak, device=device)}


def write_slice(dataset: str, rows: int, target: Path) -> Path:
    """The first ``rows`` training rows of a shuffled dataset (a tenth as many of its other splits) as parquet."""
    import datasets

    full = datasets.load_dataset(str(DATA_DIR / dataset))
    target.mkdir(parents=True)
    for split, table in full.items():
        count = min(len(table), rows if split == "train" else max(rows // 10, 50))
        table.shuffle(seed=0).select(range(count)).to_parquet(str(target / f"{split}.parquet"))
    return target


def run(args: argparse.Namespace, work: Path) -> dict:
    """Every stage in order; each stage's figures are printed to stderr as it ends."""
    results: dict = {"command": " ".join(["benchmarks/gpu.sh", *sys.argv[1:]])}
    results["device"] = check_device(args.device)
    print(f"device: {json.dumps(results['device'])}", file=sys.stderr, flush=True)
    tiny = TINY_TRAIN_ARGS if args.tiny else []
    sst2 = [f"--data.path={write_slice('sst2', args.sst2_rows, work / 'sst2')}"] if args.sst2_rows else []
    imdb = [f"--data.path={write_slice('imdb', args.imdb_rows, work / 'imdb')}"] if args.imdb_rows else []
    peaks = results["device"]["peaks"]
    stages = {
        "gpu_tests": lambda: run_gpu_tests(),
        "sst2_whole_command": lambda: whole_commands(args.device, [*sst2, *tiny], args.epochs, args.seed, work),
        "imdb_epoch": lambda: {"config": "configs/imdb_region.yaml", "batches": args.imdb_batches, **training_variants(
            "configs/imdb_region.yaml", [*imdb, *tiny], args.imdb_batches, args.device, args.variants, peaks)},
        "training_mfu": lambda: {"config": "configs/sst2.yaml", "batches": args.sst2_batches, **training_variants(
            "configs/sst2.yaml", [*sst2, *tiny], args.sst2_batches, args.device, args.variants, peaks)},
        "inference": lambda: inference(results["sst2_whole_command"]["runs"][0]["checkpoint"], args.device,
                                       args.texts, peaks["fp32"]),
    }
    for name, stage in stages.items():
        start = time.perf_counter()
        results[name] = {**stage(), "stage_seconds": time.perf_counter() - start}
        print(f"{name}: {results[name]['stage_seconds']:.1f} s", file=sys.stderr, flush=True)
    return results


def rate(flops_per_s: float) -> str:
    return f"{flops_per_s / 1e12:.1f} TFLOP/s" if flops_per_s >= 1e12 else f"{flops_per_s / 1e9:.1f} GFLOP/s"


def markdown(results: dict) -> str:
    """The figures as one table, with the command and the device they were measured on."""
    device = results["device"]
    peaks = device["peaks"]
    lines = [f"Device: {device['name']} (torch {device['torch']}, CUDA {device.get('cuda') or '-'}); peaks: "
             f"bf16 {rate(peaks['bf16'])}, fp32 {rate(peaks['fp32'])} ({peaks['source']}). "
             f"Command: `{results['command']}`", "", "| stage | measure | value |", "|---|---|---|",
             f"| gpu tests | `pytest -m gpu` | {results['gpu_tests']['summary']} |"]
    for run in results["sst2_whole_command"]["runs"]:
        lines.append(f"| SST-2 default recipe, whole command | {run['accelerator']} {run['precision']}: wall time, "
                     f"epochs, test accuracy | {run['total_s']:.1f} s, {run['epochs']}, {run['test_accuracy']:.1%} |")
    for stage, label in (("imdb_epoch", "IMDB document recipe"), ("training_mfu", "SST-2 default network training")):
        for name in VARIANTS:
            if name in results[stage]:
                run = results[stage][name]
                lines.append(f"| {label} ({run['examples']} of {run['epoch_examples']} examples timed) | {name}: "
                             f"epoch time, examples/s, MFU | {run['epoch_seconds']:.1f} s, {run['examples_per_s']:.0f}, "
                             f"{100 * run['mfu']:.2f}% of {rate(run['peak_flops_per_s'])} |")
    timing = results["inference"]
    lines += [f"| inference, {timing['texts']} SST-2 test texts (tokenization included) | batch 512: texts/s | "
              f"{timing['batch_512']['texts_per_s']:.0f} |",
              f"| inference | single text: p50, p99 | {timing['single_text_ms']['p50']:.2f} ms, "
              f"{timing['single_text_ms']['p99']:.2f} ms |"]
    return "\n".join(lines)


DEFAULTS = {  # per device: the full benchmark on a GPU, small slices for the CPU dry run
    "cuda": {"sst2_rows": None, "imdb_rows": None, "epochs": None, "imdb_batches": 100, "sst2_batches": None,
             "texts": 20000, "variants": list(VARIANTS)},
    "cpu": {"sst2_rows": 2000, "imdb_rows": 1000, "epochs": 1, "imdb_batches": 10, "sst2_batches": 20,
            "texts": 2000, "variants": ["fp32", "bf16-mixed"]},  # inductor's C++ compile takes minutes on a small CPU
}


def parse(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu: the dry run, small slices")
    parser.add_argument("--output", default="runs/gpu-benchmark/gpu.md", help="the Markdown table; the JSON beside it")
    parser.add_argument("--sst2-rows", type=int, help="train on a slice of SST-2 this many rows long")
    parser.add_argument("--imdb-rows", type=int, help="train on a slice of IMDB this many rows long")
    parser.add_argument("--epochs", type=int, help="epochs of the whole command (default: the config's)")
    parser.add_argument("--imdb-batches", type=int, help="IMDB training batches timed, after as many warm-up")
    parser.add_argument("--sst2-batches", type=int, help="SST-2 training batches timed (default: an epoch)")
    parser.add_argument("--texts", type=int, help="texts scored for the inference throughput")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), help="training precision variants")
    parser.add_argument("--tiny", action="store_true", help="a tiny network, for the test of this script")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    explicit = {key for key, value in vars(args).items() if value is not None}
    for key, value in DEFAULTS[args.device].items():
        if key not in explicit:
            setattr(args, key, value)
    return args


def main(argv: Optional[list[str]] = None) -> None:
    args = parse(argv)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gpu-benchmark-") as work:
        results = run(args, Path(work))
    for run_record in results["sst2_whole_command"]["runs"]:
        run_record.pop("checkpoint")  # it was in the temporary directory
    table = markdown(results)
    write_outputs(args.output, table, results)
    print(table)


if __name__ == "__main__":
    main()
