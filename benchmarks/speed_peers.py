"""The speed benchmark's peers on SST-2: a TextCNN as popular tutorials write it, and fastText."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Optional

import torch

from benchmarks import DATA_DIR, ROOT


def reference_textcnn(epochs: int) -> dict:
    """What users write themselves, as popular tutorials do: Python tokenization and vocabulary,
    every batch padded to the dataset's maximum length, one Conv1d per width, a plain loop.
    Same architecture, data, optimizer and batch size as configs/sst2.yaml."""
    import datasets
    from torch import nn

    from textcnn.training.build import build

    splits = datasets.load_dataset(str(DATA_DIR / "sst2"))
    config = build(["--config", str(ROOT / "configs" / "sst2.yaml")], instantiate=False).config
    net, batch_size, max_length = config.model.network, config.data.batch_size, config.data.max_length
    counts = Counter(word for text in splits["train"]["text"] for word in text.lower().split())
    vocab = {word: i + 2 for i, word in enumerate(counts)}

    def tensorize(split):
        rows = [[vocab.get(w, 1) for w in text.lower().split()][:max_length] for text in splits[split]["text"]]
        longest = max(map(len, rows))
        ids = torch.tensor([row + [0] * (longest - len(row)) for row in rows])
        return ids, torch.tensor(splits[split]["label"])

    class TutorialTextCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(len(vocab) + 2, net.embed_dim, padding_idx=0)
            widths, channels = net.kernel_sizes[0], net.conv_channels
            self.convs = nn.ModuleList(nn.Conv1d(net.embed_dim, channels[0], k, padding=k // 2) for k in widths)
            self.conv2 = nn.Conv1d(channels[0] * len(widths), channels[1], 3, padding=1)
            self.dropout, self.embedding_dropout = nn.Dropout(net.dropout), nn.Dropout(net.embedding_dropout)
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
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.model.learning_rate,
                                  weight_decay=config.model.weight_decay)
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


def fasttext_peer() -> Optional[dict]:
    """fastText supervised (25 epochs, word bigrams) on lowercased SST-2; None without ``fasttext``."""
    try:
        import fasttext
    except ImportError:
        return None
    import datasets

    splits = datasets.load_dataset(str(DATA_DIR / "sst2"))
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "train.txt"
        path.write_text("".join(f"__label__{row['label']} {row['text'].lower()}\n" for row in splits["train"]),
                        encoding="utf-8")
        start = time.perf_counter()
        model = fasttext.train_supervised(str(path), epoch=25, wordNgrams=2, verbose=0, thread=2)
        train_seconds = time.perf_counter() - start
    texts = [text.lower() for text in splits["test"]["text"]]
    start = time.perf_counter()
    labels, _ = model.predict(texts)
    per_second = len(texts) / (time.perf_counter() - start)
    accuracy = statistics.fmean(int(l[0][-1]) == y for l, y in zip(labels, splits["test"]["label"]))
    return {"train_seconds": train_seconds, "texts_per_s": per_second, "test_accuracy": accuracy}
