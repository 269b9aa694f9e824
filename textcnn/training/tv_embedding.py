"""tv-embeddings (Johnson & Zhang 2015, "Semi-supervised CNN for text categorization via region
embedding"): a region embedding learned from unlabelled text, for the document recipe.

A width-p window of one-hot tokens (a :class:`~textcnn.layers.RegionEmbedding`, K maps) is trained to
predict the words of the p tokens on either side of it, which needs no labels; the supervised model
then takes its K maps, frozen, as extra input to its own first layer (``model.network.tv_channels``).
The target words leave out the vocabulary's most frequent ones (its first ids: "the", "and", commas),
which say little about a region. Each position scores its own targets against words drawn from the
batch's targets (negative sampling, so a word is drawn as often as it occurs).

The texts stream from the unlabelled file, each pass reading it again, laid end to end in rows of
:data:`ROW_TOKENS` tokens with p padding tokens between texts, so memory stays flat. The result is
saved with the tokens of its rows, and a model of another vocabulary takes the rows of the tokens it
shares (:func:`rows_for`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from textcnn.atomic import write_atomic
from textcnn.data.unlabeled import Texts, hash_texts, unlabeled_texts
from textcnn.errors import UserInputError
from textcnn.layers import RegionEmbedding
from textcnn.packing import PAD_ID

log = logging.getLogger(__name__)

ROW_TOKENS = 512
BATCH_ROWS = 32
ENCODE_CHUNK = 256  # texts tokenized at once
NEGATIVE_DRAWS = 256  # words drawn from a batch's targets, shared by its positions
FORMAT = "textcnn-tv-embeddings-1"


@dataclass(frozen=True)
class TvRecipe:
    """How the tv-embeddings are trained: K maps over windows of ``width`` tokens, predicting the
    ``width`` tokens on each side, ``negatives`` drawn words weighed against each target."""

    channels: int = 100
    width: int = 5
    epochs: int = 2
    negatives: int = 5
    skip_most_frequent: int = 100
    learning_rate: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("channels", "width", "epochs", "negatives"):
            if getattr(self, name) < 1:
                raise UserInputError(f"the tv-embeddings' {name} must be a positive integer, got {getattr(self, name)}")


class TvObjective(nn.Module):
    """The region embedding and the output words it is trained to predict."""

    def __init__(self, vocab_size: int, recipe: TvRecipe):
        super().__init__()
        self.recipe = recipe
        self.region = RegionEmbedding(vocab_size, recipe.channels, [recipe.width])
        self.words = nn.Embedding(vocab_size, recipe.channels)
        self.word_bias = nn.Parameter(torch.zeros(vocab_size))
        nn.init.normal_(self.words.weight, std=0.01)
        left = (recipe.width - 1) // 2
        right = recipe.width - 1 - left
        self.offsets = [-(left + j) for j in range(1, recipe.width + 1)] + [right + j for j in range(1, recipe.width + 1)]

    def context(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L, 2p) the tokens around each window (padding where a text ends or another begins)."""
        reach = max(abs(offset) for offset in self.offsets)
        padded = F.pad(ids, (reach, reach), value=PAD_ID)
        return torch.stack([padded[:, reach + o: reach + o + ids.shape[1]] for o in self.offsets], dim=2)

    def forward(self, ids: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """The negative-sampling loss of a batch of rows (B, L)."""
        targets = self.context(ids)
        valid = (targets >= 2 + self.recipe.skip_most_frequent) & (ids != PAD_ID).unsqueeze(2)  # 0, 1: pad, unk
        positions = valid.any(dim=2)
        if not positions.any():
            return self.word_bias.sum() * 0.0
        maps = self.region(ids).transpose(1, 2)[positions]  # (N, K) at windows that have a target
        targets, valid = targets[positions], valid[positions]  # (N, 2p)
        scores = torch.bmm(self.words(targets), maps.unsqueeze(2)).squeeze(2) + self.word_bias[targets]
        positive = (F.softplus(-scores) * valid).sum() / valid.sum()
        pool = targets[valid]
        drawn = pool[torch.randint(len(pool), (NEGATIVE_DRAWS,), generator=generator)]
        negative = F.softplus(maps @ self.words(drawn).T + self.word_bias[drawn]).mean()
        return positive + self.recipe.negatives * negative


def token_rows(sources: list[Texts], tokenizer, gap: int) -> Iterator[torch.Tensor]:
    """Batches (BATCH_ROWS, ROW_TOKENS) of the texts' ids end to end, ``gap`` padding tokens between texts."""
    buffer: list[int] = []
    size = BATCH_ROWS * ROW_TOKENS

    def chunks() -> Iterator[list[str]]:
        chunk: list[str] = []
        for texts in sources:
            for text in texts():
                if text:
                    chunk.append(str(text))
                    if len(chunk) == ENCODE_CHUNK:
                        yield chunk
                        chunk = []
        if chunk:
            yield chunk

    for chunk in chunks():
        for encoding in tokenizer.encode_batch(chunk):
            buffer.extend(encoding.ids)
            buffer.extend([PAD_ID] * gap)
        while len(buffer) >= size:
            yield torch.tensor(buffer[:size]).view(BATCH_ROWS, ROW_TOKENS)
            del buffer[:size]
    if buffer:
        rows = -(-len(buffer) // ROW_TOKENS)
        yield torch.tensor(buffer + [PAD_ID] * (rows * ROW_TOKENS - len(buffer))).view(rows, ROW_TOKENS)


def train_tv_embeddings(sources: list[Texts], tokenizer, recipe: TvRecipe) -> dict:
    """The trained region embedding's rows and bias, for the tokenizer's vocabulary."""
    objective = fit_objective(sources, tokenizer, recipe)
    vocabulary = tokenizer.get_vocab()
    tokens = [token for token, _ in sorted(vocabulary.items(), key=lambda item: item[1])]
    return {"format": FORMAT, "tokens": tokens, "weight": objective.region.weight.detach().clone(),
            "bias": objective.region.bias.detach().clone(), "width": recipe.width, "channels": recipe.channels,
            "recipe": asdict(recipe)}


def fit_objective(sources: list[Texts], tokenizer, recipe: TvRecipe) -> TvObjective:
    """The objective trained for ``recipe.epochs`` passes over the texts."""
    torch.manual_seed(recipe.seed)
    generator = torch.Generator().manual_seed(recipe.seed)
    objective = TvObjective(tokenizer.get_vocab_size(), recipe)
    optimizer = torch.optim.Adam(objective.parameters(), lr=recipe.learning_rate, fused=True)
    for epoch in range(recipe.epochs):
        started, total, batches = time.monotonic(), 0.0, 0
        for ids in token_rows(sources, tokenizer, recipe.width):
            loss = objective(ids, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                objective.region.weight[PAD_ID].zero_()
            total, batches = total + loss.item(), batches + 1
        if not batches:
            raise UserInputError("the unlabelled texts hold no words to train tv-embeddings on; give more text")
        log.info("tv-embeddings: epoch %d of %d, loss %.4f over %s batches in %.0f s", epoch + 1,
                 recipe.epochs, total / batches, f"{batches:,}", time.monotonic() - started)
    return objective


def save(table: dict, path: Path) -> None:
    """Written atomically, so a crash leaves no half file for the cache to reuse."""
    write_atomic(path, lambda handle: torch.save(table, handle))


def read(path: str) -> dict:
    """A tv-embeddings file, or a clear error for anything else."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserInputError(f"model.tv_embeddings {path} does not exist; write one with textcnn pretrain "
                             "--tv-embeddings, or leave it out")
    try:
        table = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # a file of another kind: pickle, zip or torch errors alike
        raise UserInputError(f"model.tv_embeddings {path} is not a tv-embeddings file ({error.__class__.__name__}); "
                             "write one with textcnn pretrain --tv-embeddings") from None
    if not isinstance(table, dict) or table.get("format") != FORMAT:
        raise UserInputError(f"model.tv_embeddings {path} is not a tv-embeddings file; write one with textcnn "
                             "pretrain --tv-embeddings")
    return table


def rows_for(table: dict, vocabulary: dict[str, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) for a model whose tokenizer maps tokens to ids as ``vocabulary`` does: each
    token's row where the table has it, zeros (no contribution) where it has not."""
    own = {token: row for row, token in enumerate(table["tokens"])}
    weight = torch.zeros(max(vocabulary.values()) + 1, table["weight"].shape[1])
    shared = [(i, own[token]) for token, i in vocabulary.items() if token in own and i != PAD_ID]
    if shared:
        ids, rows = map(torch.tensor, zip(*shared))
        weight[ids] = table["weight"][rows]
    return weight, table["bias"]


def cached_tv_embeddings(unlabeled_file: str, text_column: str, training: Texts, tokenizer, recipe: TvRecipe,
                         cache_dir: Path) -> Path:
    """The tv-embeddings of the unlabelled and training texts, trained once per file, texts, vocabulary and recipe."""
    hashed = hashlib.sha256(json.dumps([torch.__version__, asdict(recipe), tokenizer.to_str()]).encode())
    path = cache_dir / f"tv-{hash_texts(hashed, unlabeled_file, training)}.pt"
    if path.exists():
        log.info("unlabelled text: using the tv-embeddings trained before on the same texts and settings, %s", path)
        return path
    started = time.monotonic()
    save(train_tv_embeddings([unlabeled_texts(unlabeled_file, text_column), training], tokenizer, recipe), path)
    log.info("unlabelled text: trained tv-embeddings (%d maps over %d-token regions) on %s and the training texts "
             "in %.0f s (%s); a second model takes them beside its own region embedding", recipe.channels,
             recipe.width, unlabeled_file, time.monotonic() - started, path)
    return path


def pretrain_tv_embeddings(unlabeled_file: str, text_column: str, output: Path, seed: int = 0) -> Path:
    """``textcnn pretrain --tv-embeddings``: tv-embeddings of the file alone, over a word tokenizer
    trained on it (a model's own tokenizer takes the rows of the tokens they share)."""
    from textcnn.tokenizer import train_tokenizer

    texts = unlabeled_texts(unlabeled_file, text_column)
    tokenizer = train_tokenizer(str(text or "") for text in texts())
    path = output / "tv-embeddings.pt"
    save(train_tv_embeddings([texts], tokenizer, TvRecipe(seed=seed)), path)
    log.info("wrote %s: train a region network with --model.tv_embeddings=%s", path, path)
    return path
