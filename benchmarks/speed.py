"""Speed benchmark: the machine's ceiling, textcnn training and inference, and two peers, in one run.

    .venv/bin/python scripts/benchmark_speed.py --checkpoint runs/sst2/lightning_logs/version_0/checkpoints/last.ckpt

Prints a markdown report (also written to ``--output``). Training figures come from separate
processes so each has its own peak RSS; model FLOP utilisation (MFU) counts only real tokens
(:mod:`benchmarks.flops`) against a large fp32 ``torch.matmul`` on the same machine.
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
from collections import Counter
from pathlib import Path

import pytorch_lightning as pl
import torch
import yaml

from benchmarks import ROOT, run_in_child

SST2 = "../shared/data/sst2"


def matmul_flops_per_second(dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.matmul(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


# -- textcnn training, one process per measurement ---------------------------------------------
def measure_training(config: str, overrides: dict, batches: int | None, precision: str) -> dict:
    """Runs in a child process: 1 warm-up epoch (or ``batches``), then times one more."""
    from textcnn.data import TextDataModule
    from benchmarks.flops import TRAINING_FLOPS_PER_FORWARD, forward_flops
    from textcnn.training.module import TextCNNClassifier
    from textcnn.model import TextCNNConfig

    settings = yaml.safe_load((ROOT / config).read_text())
    network = TextCNNConfig(**settings["model"].pop("network", {}))
    data = TextDataModule(**{**settings["data"], **overrides, "min_length": network.widest_kernel})
    model = TextCNNClassifier(data.vocab_size, data.num_classes, data.label_names, network=network,
                              **{k: v for k, v in settings["model"].items()})
    lengths = [len(ids) for ids in data.encoded("train")["input_ids"]]
    timer = EpochTimer()
    trainer = pl.Trainer(max_epochs=2, limit_train_batches=batches, limit_val_batches=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[timer], precision=precision, accelerator="cpu")
    trainer.fit(model, datamodule=data)
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


class EpochTimer(pl.Callback):
    """Wall time and batch shapes (rows, padded length) of each training epoch."""

    def __init__(self):
        self.seconds: list[float] = []
        self.shapes: list[list[tuple[int, int]]] = []

    def on_train_epoch_start(self, trainer, module):
        self.shapes.append([])
        self._start = time.perf_counter()

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.shapes[-1].append(tuple(batch["input_ids"].shape))

    def on_train_epoch_end(self, trainer, module):
        self.seconds.append(time.perf_counter() - self._start)


def run_child(**kwargs) -> dict:
    return run_in_child("speed", ["--child", json.dumps(kwargs)], cwd=ROOT, timeout=3600)


# -- what each speed-up buys, and where a step's time goes ---------------------------------------
ABLATIONS = ("as shipped", "nn.Dropout (bernoulli_ mask)", "AdamW foreach (not fused)", "fused conv widths",
             "torch.compile (dynamic shapes)")


def training_step_ablations(steps: int = 24) -> dict:
    """Milliseconds per training step (forward, backward, AdamW) of the default SST-2 network on real
    SST-2 batches, undoing one speed-up at a time (or trying one that was not kept); then a torch
    profiler breakdown of the shipped step by operator family. Runs in a child process."""
    import itertools
    import types

    from torch import nn
    from torch.nn import functional as F
    from torch.profiler import ProfilerActivity, profile

    from textcnn.data import TextDataModule
    from textcnn.model import TextCNN, TextCNNConfig

    settings = yaml.safe_load((ROOT / "configs/sst2.yaml").read_text())
    network = TextCNNConfig(**settings["model"]["network"])
    data = TextDataModule(**{**settings["data"], "min_length": network.widest_kernel})
    data.setup("fit")
    batches = list(itertools.islice(data.train_dataloader(), steps))

    def fused_widths(layer, x):
        """One Conv1d of the widest width; narrower widths' kernels zero-padded to it, centred as 'same'."""
        widest = max(conv.kernel_size[0] for conv in layer.convs)
        weight = torch.cat([F.pad(conv.weight, ((widest - 1) // 2 - (conv.kernel_size[0] - 1) // 2,
                                                widest // 2 - conv.kernel_size[0] // 2)) for conv in layer.convs])
        bias = torch.cat([conv.bias for conv in layer.convs])
        return F.relu(F.conv1d(F.pad(x, ((widest - 1) // 2, widest // 2)), weight, bias))

    def build(variant: str):
        torch.manual_seed(0)
        model = TextCNN(data.vocab_size, data.num_classes, network).train()
        if variant == "nn.Dropout (bernoulli_ mask)":
            model.embedding_dropout, model.dropout = nn.Dropout(network.embedding_dropout), nn.Dropout(network.dropout)
        if variant == "fused conv widths":
            for layer in model.layers:
                layer.forward = types.MethodType(fused_widths, layer)
        fused = variant != "AdamW foreach (not fused)"
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=fused, foreach=None if fused else True)
        if variant == "torch.compile (dynamic shapes)":
            model = torch.compile(model, dynamic=True)

        def step(batch):
            optimizer.zero_grad()
            F.cross_entropy(model(batch["input_ids"]), batch["labels"]).backward()
            optimizer.step()
        return step

    def milliseconds(step) -> float:
        for batch in batches[:6]:  # warm-up (and compilation)
            step(batch)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for batch in batches:
                step(batch)
            best = min(best, (time.perf_counter() - start) / len(batches))
        return 1000 * best

    steps_ms = {variant: milliseconds(build(variant)) for variant in ABLATIONS}
    step = build("as shipped")
    milliseconds(step)
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        start = time.perf_counter()
        for batch in batches:
            step(batch)
        wall = time.perf_counter() - start
    families = {"convolution forward + backward": ("convolution", "mkldnn_convolution", "_convolution"),
                "optimizer (fused AdamW)": ("_fused_adamw",), "max-pooling": ("max_pool", "amax"),
                "embedding + backward": ("embedding",), "dropout masks": ("uniform_", "ge", "bernoulli_"),
                "padding masks (masked_fill)": ("masked_fill",)}
    shares = dict.fromkeys([*families, "other torch ops"], 0.0)
    for event in profiler.key_averages():
        if not event.key.startswith("aten::"):
            continue
        name = event.key.removeprefix("aten::")
        family = next((f for f, keys in families.items() if name.startswith(keys)), "other torch ops")
        shares[family] += event.self_cpu_time_total / 1e6
    shares["outside torch ops (Python, autograd engine)"] = max(0.0, wall - sum(shares.values()))
    return {"steps_ms": steps_ms, "profile_shares": {k: v / wall for k, v in shares.items()}, "batches": len(batches)}


# -- inference ----------------------------------------------------------------------------------
def measure_inference(checkpoint: str, texts: list[str], ceiling: float) -> dict:
    import textcnn
    from benchmarks.flops import forward_flops
    from textcnn.tokenizer import encode

    predictor = textcnn.load(checkpoint)
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


# -- the peers ----------------------------------------------------------------------------------
def reference_textcnn(epochs: int) -> dict:
    """What users write themselves, as popular tutorials do: Python tokenization and vocabulary,
    every batch padded to the dataset's maximum length, one Conv1d per width, a plain loop.
    Same architecture, data, optimizer and batch size as configs/sst2.yaml."""
    import datasets
    from torch import nn

    splits = datasets.load_dataset(str(ROOT / SST2))
    settings = yaml.safe_load((ROOT / "configs/sst2.yaml").read_text())
    net, batch_size = settings["model"]["network"], settings["data"]["batch_size"]
    counts = Counter(word for text in splits["train"]["text"] for word in text.lower().split())
    vocab = {word: i + 2 for i, word in enumerate(counts)}

    def tensorize(split):
        rows = [[vocab.get(w, 1) for w in text.lower().split()][: settings["data"]["max_length"]]
                for text in splits[split]["text"]]
        longest = max(map(len, rows))
        ids = torch.tensor([row + [0] * (longest - len(row)) for row in rows])
        return ids, torch.tensor(splits[split]["label"])

    class TutorialTextCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(len(vocab) + 2, net["embed_dim"], padding_idx=0)
            widths, channels = net["kernel_sizes"][0], net["conv_channels"]
            self.convs = nn.ModuleList(nn.Conv1d(net["embed_dim"], channels[0], k, padding=k // 2) for k in widths)
            self.conv2 = nn.Conv1d(channels[0] * len(widths), channels[1], 3, padding=1)
            self.dropout, self.embedding_dropout = nn.Dropout(net["dropout"]), nn.Dropout(net["embedding_dropout"])
            self.fc = nn.Linear(channels[1], 2)

        def forward(self, x):
            x = self.embedding_dropout(self.embedding(x)).permute(0, 2, 1)
            length = x.shape[2]
            x = torch.cat([torch.relu(conv(x))[:, :, :length] for conv in self.convs], dim=1)
            x = torch.relu(self.conv2(nn.functional.max_pool1d(x, 2, ceil_mode=True)))
            return self.fc(self.dropout(x.max(dim=2).values))

    torch.manual_seed(0)
    train_x, train_y = tensorize("train")
    test_x, test_y = tensorize("test")
    model = TutorialTextCNN()
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings["model"]["learning_rate"],
                                  weight_decay=settings["model"]["weight_decay"])
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(train_x, train_y), batch_size=batch_size,
                                         shuffle=True)
    seconds = []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        for x, y in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    model.eval()
    with torch.no_grad():
        accuracy = float((model(test_x).argmax(1) == test_y).float().mean())
    return {"epoch_seconds": statistics.median(seconds), "test_accuracy": accuracy, "epochs": epochs,
            "padded_length": train_x.shape[1]}


def fasttext_peer() -> dict | None:
    try:
        import fasttext
    except ImportError:
        return None
    import datasets

    splits = datasets.load_dataset(str(ROOT / SST2))
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        for row in splits["train"]:
            handle.write(f"__label__{row['label']} {row['text'].lower()}\n")
    start = time.perf_counter()
    model = fasttext.train_supervised(handle.name, epoch=25, wordNgrams=2, verbose=0, thread=2)
    train_seconds = time.perf_counter() - start
    texts = [text.lower() for text in splits["test"]["text"]]
    start = time.perf_counter()
    labels, _ = model.predict(texts)
    per_second = len(texts) / (time.perf_counter() - start)
    accuracy = statistics.fmean(int(l[0][-1]) == y for l, y in zip(labels, splits["test"]["label"]))
    return {"train_seconds": train_seconds, "texts_per_s": per_second, "test_accuracy": accuracy}


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
    sst2 = run_child(config="configs/sst2.yaml", overrides={}, batches=None, precision="32-true")
    sst2_bucketed = run_child(config="configs/sst2.yaml", overrides={"bucket_by_length": True}, batches=None,
                              precision="32-true")
    sst2_bf16 = run_child(config="configs/sst2.yaml", overrides={"bucket_by_length": True}, batches=None,
                          precision="bf16-mixed")
    imdb = run_child(config="configs/imdb.yaml", overrides={"bucket_by_length": True}, batches=args.imdb_batches,
                     precision="32-true")
    ablations = run_child(ablations=True)
    import datasets

    test_texts = datasets.load_dataset(str(ROOT / SST2), split="test")["text"]
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
        ("SST-2 train fp32", sst2, ceiling["fp32"]),
        ("SST-2 train fp32, length-bucketed", sst2_bucketed, ceiling["fp32"]),
        ("SST-2 train bf16-mixed, length-bucketed", sst2_bf16, ceiling["bf16"]),
        (f"IMDB (configs/imdb.yaml) train fp32, length-bucketed ({run_name(imdb)})", imdb, ceiling["fp32"]),
    )
    for name, run, peak in runs:
        lines += [
            f"| {name}: examples/s, tokens/s | {run['examples_per_s']:.0f}, {run['tokens_per_s']:.0f} |",
            f"| {name}: FLOPs/example, MFU | {run['flops_per_example'] / 1e6:.1f} MFLOP, "
            f"{100 * run['flops_per_s'] / peak:.1f}% of {peak / 1e9:.0f} GFLOP/s |",
            f"| {name}: real tokens / padded positions, utilisation counting padding | "
            f"{100 * run['real_token_share']:.0f}%, {100 * run['executed_flops_per_s'] / peak:.1f}% |",
            f"| {name}: epoch time, peak RSS | {run['epoch_seconds']:.1f} s, {run['peak_rss_mb']:.0f} MB |",
        ]
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
