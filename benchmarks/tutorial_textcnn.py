"""A TextCNN the way a tutorial writes it, as the whole-command benchmark's yardstick (not textcnn code).

Kim's CNN-rand: whitespace vocabulary, 300-dim embeddings from scratch, widths 3/4/5 x 100 maps,
dropout 0.5, Adam, batches of 50 padded to their longest text, a fixed number of epochs, then
the test accuracy of the last epoch. ``python benchmarks/tutorial_textcnn.py DATASET_DIR EPOCHS SEED``
"""

import sys
from collections import Counter

import datasets
import torch
from torch import nn

path, epochs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(seed)
splits = datasets.load_dataset(path)
counts = Counter(word for text in splits["train"]["text"] for word in text.lower().split())
vocab = {word: index + 2 for index, word in enumerate(counts)}  # 0 padding, 1 unknown


def batches(split, shuffle):
    rows = [[vocab.get(word, 1) for word in text.lower().split()] or [1] for text in splits[split]["text"]]
    labels = torch.tensor(splits[split]["label"])
    order = torch.randperm(len(rows)) if shuffle else torch.arange(len(rows))
    for start in range(0, len(rows), 50):
        chosen = order[start : start + 50].tolist()
        longest = max(5, max(len(rows[i]) for i in chosen))
        ids = torch.tensor([rows[i] + [0] * (longest - len(rows[i])) for i in chosen])
        yield ids, labels[chosen]


class TextCNN(nn.Module):
    def __init__(self, vocab_size, num_classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 300, padding_idx=0)
        self.convs = nn.ModuleList(nn.Conv1d(300, 100, width) for width in (3, 4, 5))
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(300, num_classes)

    def forward(self, ids):
        x = self.embedding(ids).transpose(1, 2)
        pooled = [torch.relu(conv(x)).max(dim=2).values for conv in self.convs]
        return self.fc(self.dropout(torch.cat(pooled, dim=1)))


model = TextCNN(len(vocab) + 2, splits["train"].features["label"].num_classes)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(epochs):
    model.train()
    for ids, labels in batches("train", shuffle=True):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(ids), labels).backward()
        optimizer.step()
model.eval()
with torch.no_grad():
    correct = sum(int((model(ids).argmax(1) == labels).sum()) for ids, labels in batches("test", shuffle=False))
print(f"test_accuracy {correct / len(splits['test']):.4f}")
