"""What each training speed-up buys, and where a step's time goes: the speed benchmark's step ablations.

The default SST-2 network (``configs/sst2.yaml``, built by :func:`textcnn.training.build.build`)
takes bare training steps (forward, backward, AdamW) on real SST-2 batches, with one speed-up undone
at a time (or one tried that was not kept); then a torch profiler splits the shipped step by
operator family.
"""

from __future__ import annotations

import itertools
import tempfile
import time
import types

import torch
from torch import nn
from torch.nn import functional as F

ABLATIONS = ("as shipped", "padded batches (no packing)", "nn.Dropout (bernoulli_ mask)", "AdamW foreach (not fused)", "fused conv widths",
             "torch.compile (dynamic shapes)")
OPERATOR_FAMILIES = {
    "convolution forward + backward": ("convolution", "mkldnn_convolution", "_convolution"),
    "optimizer (fused AdamW)": ("_fused_adamw",),
    "max-pooling": ("max_pool", "amax"),
    "embedding + backward": ("embedding",),
    "dropout masks": ("uniform_", "ge", "bernoulli_"),
    "padding masks (masked_fill)": ("masked_fill",),
    "packing (gathers, per-text max and mean)": ("index_put", "scatter_reduce", "index_add", "repeat_interleave"),
}


def fused_widths(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One Conv1d of the widest width; narrower widths' kernels zero-padded to it, centred as 'same'."""
    widest = max(conv.kernel_size[0] for conv in layer.convs)
    weight = torch.cat([F.pad(conv.weight, ((widest - 1) // 2 - (conv.kernel_size[0] - 1) // 2,
                                            widest // 2 - conv.kernel_size[0] // 2)) for conv in layer.convs])
    bias = torch.cat([conv.bias for conv in layer.convs])
    return F.relu(F.conv1d(F.pad(x, ((widest - 1) // 2, widest // 2)), weight, bias))


def training_step_ablations(steps: int = 24) -> dict:
    """Milliseconds per training step of each variant in ``ABLATIONS``, and the profiler's shares of
    the shipped step. Runs in a child process (``python -m benchmarks.speed --child``)."""
    from torch.profiler import ProfilerActivity, profile

    from textcnn.model import TextCNN
    from textcnn.training.build import build

    with tempfile.TemporaryDirectory() as root:  # the tokenizer is trained afresh and not kept
        cli = build(["--config", "configs/sst2.yaml", f"--trainer.default_root_dir={root}"], model_selection=False)
    data, network = cli.datamodule, cli.model.model.config
    data.setup("fit")
    batches = list(itertools.islice(data.train_dataloader(), steps))

    def step_of(variant: str):
        torch.manual_seed(0)
        model = TextCNN(data.vocab_size, data.num_classes, network,
                        pack_batches=variant != "padded batches (no packing)").train()
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

    steps_ms = {variant: milliseconds(step_of(variant)) for variant in ABLATIONS}
    step = step_of("as shipped")
    milliseconds(step)
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        start = time.perf_counter()
        for batch in batches:
            step(batch)
        wall = time.perf_counter() - start
    shares = dict.fromkeys([*OPERATOR_FAMILIES, "other torch ops"], 0.0)
    for event in profiler.key_averages():
        if not event.key.startswith("aten::"):
            continue
        name = event.key.removeprefix("aten::")
        family = next((f for f, keys in OPERATOR_FAMILIES.items() if name.startswith(keys)), "other torch ops")
        shares[family] += event.self_cpu_time_total / 1e6
    shares["outside torch ops (Python, autograd engine)"] = max(0.0, wall - sum(shares.values()))
    return {"steps_ms": steps_ms, "profile_shares": {k: v / wall for k, v in shares.items()}, "batches": len(batches)}
