"""The building blocks of :class:`textcnn.model.TextCNN`, each a plain ``nn.Module``: the parallel
convolution layer, the region embedding (one-hot tokens as a first convolution's input channels),
DPCNN's residual block, the bag of n-grams, and a faster dropout. ``model.py`` reads as the network
built from them."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from textcnn.packing import PAD_ID, PackedBatch, segment_mean


class Dropout(nn.Dropout):
    """``nn.Dropout`` with its mask drawn by ``torch.rand_like``: the same distribution, but on CPU
    about 3× faster forward + backward than the ``bernoulli_`` that ``F.dropout`` draws with, which
    cost a tenth of an SST-2 training step on the embeddings (scripts/benchmark_speed.py)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand_like(x) >= self.p
        return x * keep * (1.0 / (1.0 - self.p))


class ConvLayer(nn.Module):
    """Parallel Conv1d widths over the same input, concatenated along channels, then ReLU.

    'Same' padding ((k-1)//2 zeros left, k//2 right) keeps the sequence length, so every width
    lines up position by position and a text's first and last words are seen by every filter.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_sizes: list[int]):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(in_channels, out_channels, k) for k in kernel_sizes)
        self.paddings = [((k - 1) // 2, k // 2) for k in kernel_sizes]

    @property
    def out_channels(self) -> int:
        return sum(conv.out_channels for conv in self.convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, L) → (B, C_out, L)
        return F.relu(torch.cat([conv(F.pad(x, pad)) for conv, pad in zip(self.convs, self.paddings)], dim=1))


class RegionEmbedding(nn.Embedding):
    """Conv1d filter banks of widths p₁…pₙ, C maps each, over one-hot tokens (vocabulary-many input
    channels), concatenated along channels like :class:`ConvLayer`'s, then ReLU.

    The weight (C, vocab, p) of width p is stored as p·C columns of one table (vocab, Σp·C): token t's
    row holds what t adds to each of the p windows it falls in, so a window's output is the sum of p
    table parts: an ``embedding_bag``, no multiply. Padding is the one-hot zero vector, so 'same'
    padding matches :class:`ConvLayer`'s and a text scores the same alone, padded or packed.
    """

    def __init__(self, vocab_size: int, channels: int, widths: list[int]):
        super().__init__(vocab_size, sum(widths) * channels, padding_idx=PAD_ID)
        self.channels, self.widths = channels, list(widths)
        self.bias = nn.Parameter(torch.zeros(len(widths) * channels))
        # the windows' sums before bias and ReLU, a module so that adversarial training can hook and perturb
        # them: a region network's continuous input, as the lookup's output is a word-embedding network's
        self.window_sums = nn.Identity()
        nn.init.normal_(self.weight, std=0.01)  # Johnson & Zhang's scale; a Conv1d's 1/sqrt(vocab·p) is ~0
        with torch.no_grad():
            self.weight[PAD_ID].zero_()

    @property
    def out_channels(self) -> int:
        return len(self.widths) * self.channels

    def forward(self, input_ids: torch.Tensor, extra: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, L) ids → (B, n·C, L); ``extra`` (B, L, n·C), e.g. tv-embeddings' maps, joins the sums before the ReLU."""
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            out = self.shifted_sums(input_ids)  # plain gathers and adds, which every ONNX runtime runs
        else:
            out = self.window_bags(input_ids)
        out = self.window_sums(out) + self.bias
        return F.relu(out if extra is None else out + extra).transpose(1, 2)

    def window_bags(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L, n·C) before bias and ReLU: each window's p parts summed by one ``embedding_bag`` over
        every width, with no (B, L, p, C) intermediate and one gradient of the table; forward + backward
        about 5× faster on CPU than the shifted sums at IMDB's sizes (30k tokens, 300 maps, width 3)."""
        batch, length = input_ids.shape
        parts_per_token, widest = sum(self.widths), max(self.widths)
        padding_row = PAD_ID * parts_per_token  # padding's parts are never trained, so every padded slot points here
        bags, first_part = [], 0
        for width in self.widths:
            left = (width - 1) // 2
            windows = F.pad(input_ids, (left, width - 1 - left), value=PAD_ID).unfold(1, width, 1)  # (B, L, p)
            rows = windows * parts_per_token + first_part + torch.arange(width, device=input_ids.device)
            rows = rows.masked_fill(windows == PAD_ID, padding_row)
            bags.append(F.pad(rows, (0, widest - width), value=padding_row))  # (B, L, widest)
            first_part += width
        rows = torch.stack(bags, dim=2).view(batch * length * len(self.widths), widest)  # bag per window and width
        summed = F.embedding_bag(rows, self.weight.view(-1, self.channels), mode="sum", padding_idx=padding_row)
        return summed.view(batch, length, len(self.widths) * self.channels)  # widths in order along channels

    def shifted_sums(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The same sums as :meth:`window_bags` from one lookup of whole rows and p shifted slices."""
        batch, length = input_ids.shape
        rows = super().forward(input_ids).masked_fill((input_ids == PAD_ID)[:, :, None], 0.0)  # whatever row 0 holds
        outputs, start = [], 0
        for width in self.widths:
            part = rows[:, :, start:start + width * self.channels].view(batch, length, width, self.channels)
            start += width * self.channels
            left = (width - 1) // 2
            part = F.pad(part, (0, 0, 0, 0, left, width - 1 - left))  # (B, L + p - 1, p, C), zero = padding
            out = part[:, 0:length, 0]
            for offset in range(1, width):  # window t sums token t-left+j's j-th part
                out = out + part[:, offset:offset + length, offset]
            outputs.append(out)
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)


class ResidualBlock(nn.Module):
    """DPCNN block: optional stride-2 max-pool (halves L), then two pre-activation width-3
    convolutions added to the shortcut. Channels stay fixed, so deeper blocks cost half as much."""

    def __init__(self, channels: int, downsample: bool):
        super().__init__()
        self.downsample = downsample
        self.conv1 = nn.Conv1d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, L) with padded positions zero, mask (B, 1, L) → (B, C, L'), (B, 1, L')."""
        if self.downsample:
            # the residual stream can be negative: padding must lose the max, not tie at zero
            x = F.max_pool1d(x.masked_fill(~mask, float("-inf")), 3, stride=2, padding=1)  # (B, C, ⌈L/2⌉)
            mask = mask[:, :, ::2]  # window j covers 2j-1..2j+1: real iff position 2j is
            x = x.masked_fill(~mask, 0.0)
        h = self.conv1(F.relu(x)).masked_fill(~mask, 0.0)
        h = self.conv2(F.relu(h)).masked_fill(~mask, 0.0)
        return x + h, mask


class NGramBag(nn.Module):
    """The mean embedding of a text's 1…``order``-grams: unigrams by token id, longer n-grams hashed.

    Row 0 is padding (excluded from the mean); unigram ``t`` is row ``t``; an n-gram of 2 or more
    tokens is row ``vocab_size + hash % buckets``, the hash a polynomial in its token ids, so the
    rows need no n-gram vocabulary and a checkpoint needs nothing beside its weights. An n-gram
    that reaches into the padding is padding.
    """

    HASH_BASE = 1_000_003  # a prime above any vocabulary size, so distinct n-grams rarely share a bucket

    def __init__(self, vocab_size: int, order: int, buckets: int, dim: int):
        super().__init__()
        self.vocab_size, self.order, self.buckets = vocab_size, order, buckets
        self.embedding = nn.Embedding(vocab_size + buckets, dim, padding_idx=PAD_ID)
        nn.init.uniform_(self.embedding.weight, -1.0 / dim, 1.0 / dim)  # fastText's initialisation
        with torch.no_grad():
            self.embedding.weight[PAD_ID].zero_()

    def ngram_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) token ids → (B, order·L) rows of the table, padding where an n-gram is incomplete."""
        real = input_ids != PAD_ID
        ids, rows = input_ids, [input_ids]
        for n in range(2, self.order + 1):
            shifted = F.pad(input_ids[:, n - 1:], (0, n - 1), value=PAD_ID)  # token t+n-1 at position t
            real = real & (shifted != PAD_ID)
            ids = (ids * self.HASH_BASE + shifted) % self.buckets  # hash of tokens t … t+n-1
            rows.append(torch.where(real, ids + self.vocab_size, PAD_ID))
        return torch.cat(rows, dim=1)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:  # (B, L) → (B, D)
        # a masked mean rather than nn.EmbeddingBag, which ONNX cannot export with a padding row
        rows = self.ngram_ids(input_ids)  # (B, n·L)
        real = (rows != PAD_ID).unsqueeze(2)  # (B, n·L, 1)
        total = self.embedding(rows).masked_fill(~real, 0.0).sum(dim=1)  # (B, D), whatever the padding row holds
        return total / real.sum(dim=1).clamp(min=1)

    def packed(self, batch: PackedBatch) -> torch.Tensor:
        """The same means for the texts of a packed batch (B, D): n-grams never span two slots,
        whose gaps are wider than an n-gram."""
        rows = self.ngram_ids(batch.ids)  # (R, n·L): n blocks of L positions, each in slot order
        segments = batch.segments.repeat(1, self.order)
        return segment_mean(self.embedding(rows), rows != PAD_ID, segments, batch.num_texts)
