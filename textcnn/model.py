"""The TextCNN network: a plain ``nn.Module`` you can read top to bottom.

Token ids are embedded and transposed so that the embedding dimensions become the Conv1d input
channels::

    input_ids (B, L) → Embedding → (B, L, E) → transpose → (B, E, L)
      → [Conv1d widths k₁…kₙ in parallel → concat → ReLU → max-pool] × layers
      → global max-pool over time → (B, C) → dropout → Linear → logits (B, num_classes)

``architecture: dpcnn`` (Johnson & Zhang 2017, for long documents) keeps the first layer as a
region embedding and replaces the rest of the stack with residual blocks at a fixed channel count::

      → region embedding (B, C, L) → [2 × (ReLU → Conv1d width 3)] + shortcut
      → [max-pool width 3, stride 2 → (B, C, ⌈L/2⌉) → 2 × (ReLU → Conv1d width 3) + shortcut] × dpcnn_blocks
      → ReLU → global max-pool over time → dropout → Linear

``architecture: region`` (Johnson & Zhang 2015, "seq-CNN") takes the channels view to its limit: the
first Conv1d's input channels are the whole vocabulary, one-hot, so a width-p filter bank is p parts
of a token's row in a (vocab, p·C) table, one per offset, summed; no dense one-hot tensor and no
multiply (training sums each window's parts with one ``embedding_bag``; export with the shifted slices
below). Several widths in parallel ("seq2-CNN") share one table, their maps concatenated::

    input_ids (B, L) → Embedding (vocab, p·C) → (B, L, p, C) → Σ_j part j of token t-⌊(p-1)/2⌋+j
      → (B, C, L) [; other widths] → + bias → ReLU → [max-pool → Conv1d layers] → global max-pool → …

``ngram_order`` adds a bag of n-grams beside the convolutions (the "bown" of Johnson & Zhang 2015,
fastText's bigram embeddings): every 1…n-gram of the text is embedded, unigrams by token id and longer
n-grams hashed into ``ngram_buckets`` rows, and the embeddings are averaged over the text::

      input_ids (B, L) → n-gram ids (B, n·L) → Embedding → mean over real n-grams → (B, D)
      logits = Linear([conv features (B, C) ; bag (B, D)])

so the classifier can always fall back on a linear n-gram model, which is what wins on long reviews.

Padding never wins a max-pool: padded positions are zeroed after every ReLU (so the max over real,
non-negative activations is unchanged) and before every convolution (so a convolution sees the same
zeros at the end of a padded text as at the edge of the same text scored alone). A text therefore
gets the same logits alone or inside a padded batch. A batch that is mostly padding runs packed
instead (:mod:`textcnn.packing`): its texts end to end in a few rows, with the same logits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from textcnn.errors import UserInputError
from textcnn.layers import ConvLayer, Dropout, NGramBag, RegionEmbedding, ResidualBlock
from textcnn.packing import PAD_ID, PackedBatch, pack, segment_max
from textcnn.packing import layout as packing_layout

__all__ = ["PAD_ID", "TextCNN", "TextCNNConfig", "widest_kernel", "ConvLayer", "Dropout", "NGramBag",
           "RegionEmbedding", "ResidualBlock"]

# a batch runs packed when packing removes more than this share of its positions; one that would
# save less (e.g. length-sorted evaluation batches) is not worth the layout and the per-text pools
PACK_WHEN_PADDED_OVER = 0.25
EmbeddingMode = Literal["rand", "static", "non-static", "multichannel"]
EMBEDDING_MODES = ("rand", "static", "non-static", "multichannel")
Architecture = Literal["textcnn", "dpcnn", "region"]
ARCHITECTURES = ("textcnn", "dpcnn", "region")


@dataclass
class TextCNNConfig:
    """Architecture of a TextCNN; every field is a plain value so it can live in YAML and checkpoints.

    ``kernel_sizes[i]`` lists the convolution widths that run in parallel in layer ``i`` (a bare int
    means one width); each width produces ``conv_channels[i]`` output channels, concatenated.
    The defaults are the default recipe (chosen on validation splits; docs/results.md): 50-dimensional
    embeddings fine-tuned from GloVe (``non-static``), widths 3, 4, 5 in parallel with 128 maps each,
    then one width-3 layer of 256 channels, beside a bag of unigrams and bigrams. Kim (2014): one layer,
    ``kernel_sizes=[[3, 4, 5]]``, ``conv_channels=[100]``, ``ngram_order=0``.

    ``embedding_mode`` picks Kim's variant: ``rand`` (learned from scratch), ``static`` /
    ``non-static`` (initialised from pretrained vectors, frozen / fine-tuned) or ``multichannel``
    (a frozen and a fine-tuned copy concatenated along channels: the first Conv1d sees
    2 × ``embed_dim`` channels). The vectors come from ``data.pretrained_vectors``.

    ``architecture`` names the stack: ``textcnn`` (the layers above) or ``dpcnn``: one layer
    (``conv_channels=[C]``, ``kernel_sizes=[3]``) as region embedding, then one residual block and
    ``dpcnn_blocks`` downsampling residual blocks, each halving the length with C channels kept.
    ``region``: the first layer (widths p₁…pₙ in parallel, C maps each) convolves one-hot tokens, its
    weights a table of vocabulary rows (region embeddings); ``embed_dim``, ``embedding_dropout`` and pretrained vectors
    do not apply (``embedding_mode: rand``); later layers are the textcnn stack's.

    ``ngram_order`` n > 0 adds the bag-of-n-grams branch (unigrams … n-grams, ``ngram_dim`` features,
    n-grams of 2 or more tokens hashed into ``ngram_buckets`` rows); 0 leaves it out, as in Kim (2014).

    ``tv_channels`` K > 0 (``region`` only) adds tv-embeddings (Johnson & Zhang 2015,
    :mod:`textcnn.training.tv_embedding`): a frozen region embedding of width ``tv_width``, trained on
    unlabelled text to predict the words around each region, whose K maps enter the first layer
    beside the one-hot tokens (a 1×1 convolution adds them before its ReLU).
    """

    embed_dim: int = 50
    conv_channels: list[int] = field(default_factory=lambda: [128, 256])
    kernel_sizes: list[Union[int, list[int]]] = field(default_factory=lambda: [[3, 4, 5], 3])
    pool_size: int = 2
    dropout: float = 0.5
    embedding_dropout: float = 0.5
    embedding_mode: EmbeddingMode = "non-static"
    architecture: Architecture = "textcnn"
    dpcnn_blocks: int = 6
    ngram_order: int = 2
    ngram_buckets: int = 2**18
    ngram_dim: int = 16
    tv_channels: int = 0
    tv_width: int = 5

    @classmethod
    def from_saved(cls, network: dict) -> "TextCNNConfig":
        """The config of a saved network (a checkpoint's hyperparameters). Networks saved before the
        n-gram bag existed have no ``ngram_order`` and were built without one."""
        return cls(**{"ngram_order": 0, **network})

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise UserInputError(
                f"model.network.architecture must be one of {', '.join(ARCHITECTURES)}, got {self.architecture!r}"
            )
        if self.embedding_mode not in EMBEDDING_MODES:
            raise UserInputError(
                f"model.network.embedding_mode must be one of {', '.join(EMBEDDING_MODES)}, got {self.embedding_mode!r}"
            )
        self.kernel_sizes = [[k] if isinstance(k, int) else list(k) for k in self.kernel_sizes]
        if len(self.conv_channels) != len(self.kernel_sizes):
            raise UserInputError(
                f"model.network.conv_channels has {len(self.conv_channels)} layers but "
                f"model.network.kernel_sizes has {len(self.kernel_sizes)}; give one entry per layer"
            )
        if not self.conv_channels:
            raise UserInputError("model.network.conv_channels is empty; give at least one layer")
        if self.architecture == "dpcnn" and len(self.conv_channels) != 1:
            raise UserInputError(
                f"architecture dpcnn takes one region-embedding layer (e.g. conv_channels: [250], kernel_sizes: [3]), "
                f"got {len(self.conv_channels)} layers; its depth is model.network.dpcnn_blocks"
            )
        if self.architecture == "region":
            if self.embedding_mode != "rand":
                raise UserInputError(
                    f"architecture region learns its own region embeddings from one-hot tokens, so it takes no "
                    f"pretrained vectors: set model.network.embedding_mode=rand and data.pretrained_vectors=null "
                    f"(got embedding_mode {self.embedding_mode!r})"
                )
        if self.tv_channels and self.architecture != "region":
            raise UserInputError(f"model.network.tv_channels (tv-embeddings) takes architecture region, got "
                                 f"{self.architecture!r}; set model.network.tv_channels=0")
        if self.tv_channels < 0 or self.tv_width < 1:
            raise UserInputError(f"model.network.tv_channels must be 0 (none) or more and tv_width positive, got "
                                 f"{self.tv_channels} and {self.tv_width}")
        if self.dpcnn_blocks < 0:
            raise UserInputError(f"model.network.dpcnn_blocks must be 0 or more, got {self.dpcnn_blocks}")
        if self.ngram_order < 0:
            raise UserInputError(f"model.network.ngram_order must be 0 (no n-gram branch) or more, got {self.ngram_order}")
        for name in ("embed_dim", "pool_size", "ngram_buckets", "ngram_dim"):
            if getattr(self, name) < 1:
                raise UserInputError(f"model.network.{name} must be a positive integer, got {getattr(self, name)}")
        if any(c < 1 for c in self.conv_channels) or any(k < 1 for ks in self.kernel_sizes for k in ks):
            raise UserInputError("model.network.conv_channels and kernel_sizes must hold positive integers")
        for name in ("dropout", "embedding_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise UserInputError(f"model.network.{name} must be in [0, 1), got {getattr(self, name)}")

    @property
    def embedding_channels(self) -> int:
        """Input channels of the first convolution."""
        return self.embed_dim * (2 if self.embedding_mode == "multichannel" else 1)

    @property
    def widest_kernel(self) -> int:
        return widest_kernel(self.kernel_sizes)


def widest_kernel(kernel_sizes: list[Union[int, list[int]]]) -> int:
    """The widest convolution of ``kernel_sizes`` (as in :class:`TextCNNConfig`): the fewest tokens a
    batch is padded to, so every window fits."""
    return max(max(k) if isinstance(k, (list, tuple)) else k for k in kernel_sizes)


class TextCNN(nn.Module):
    """``vocab_size`` and ``num_classes`` come from the data (tokenizer, label names); the rest from
    ``config``. ``pretrained`` (vocab_size, embed_dim) initialises the embeddings of the static,
    non-static and multichannel modes, and ``tv_embeddings`` (weight (vocab_size, tv_width·K), bias
    (K,)) the frozen tv-embeddings; a model rebuilt from a checkpoint gets both from its state_dict
    instead (frozen copies included)."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        config: TextCNNConfig | None = None,
        pretrained: Optional[torch.Tensor] = None,
        pack_batches: bool = True,
        tv_embeddings: Optional[tuple[torch.Tensor, torch.Tensor]] = None,
    ):
        super().__init__()
        config = config or TextCNNConfig()
        self.config = config
        region = config.architecture == "region"
        # region: the one-hot convolutions' weights, a row of Σwidths·C per token (see RegionEmbedding)
        self.embedding = (RegionEmbedding(vocab_size, config.conv_channels[0], config.kernel_sizes[0]) if region
                          else nn.Embedding(vocab_size, config.embed_dim, padding_idx=PAD_ID))
        # multichannel: a frozen copy beside the trainable one; static: the only copy is frozen
        self.static_embedding = (
            nn.Embedding(vocab_size, config.embed_dim, padding_idx=PAD_ID)
            if config.embedding_mode == "multichannel" else None
        )
        if pretrained is not None and region:
            raise UserInputError("architecture region learns its own region embeddings and takes no pretrained vectors; "
                                 "set data.pretrained_vectors=null")
        if pretrained is not None:
            if tuple(pretrained.shape) != (vocab_size, config.embed_dim):
                raise UserInputError(
                    f"the pretrained vectors have {pretrained.shape[-1]} dimensions for {pretrained.shape[0]} words "
                    f"but model.network.embed_dim is {config.embed_dim} for {vocab_size} words; "
                    f"set model.network.embed_dim={pretrained.shape[-1]}"
                )
            for embedding in (self.embedding, self.static_embedding):
                if embedding is not None:
                    embedding.weight.data.copy_(pretrained)
        if config.embedding_mode == "static":
            self.embedding.weight.requires_grad_(False)
        if self.static_embedding is not None:
            self.static_embedding.weight.requires_grad_(False)
        self.embedding_dropout = Dropout(config.embedding_dropout)
        layers, in_channels = [], config.embedding_channels  # embedding dims are the first layer's channels
        if region:  # the region embedding is the first layer
            layers, in_channels = [self.embedding], self.embedding.out_channels
        for out_channels, widths in list(zip(config.conv_channels, config.kernel_sizes))[len(layers):]:
            layers.append(ConvLayer(in_channels, out_channels, widths))
            in_channels = layers[-1].out_channels
        self.layers = nn.ModuleList(layers)
        self.tv_embedding, self.tv_projection = self._tv_embedding(vocab_size, tv_embeddings)
        self.blocks = nn.ModuleList(
            ResidualBlock(in_channels, downsample=i > 0) for i in range(config.dpcnn_blocks + 1)
        ) if config.architecture == "dpcnn" else nn.ModuleList()
        self.ngrams = (
            NGramBag(vocab_size, config.ngram_order, config.ngram_buckets, config.ngram_dim)
            if config.ngram_order else None
        )
        self.dropout = Dropout(config.dropout)
        self.pack_batches = pack_batches
        self.classifier = nn.Linear(in_channels + (config.ngram_dim if self.ngrams else 0), num_classes)

    def _tv_embedding(self, vocab_size: int, table: Optional[tuple[torch.Tensor, torch.Tensor]]):
        """The frozen tv-embedding and the 1×1 convolution that adds its maps to the first layer's, or
        (None, None) without ``tv_channels``."""
        config = self.config
        if not config.tv_channels:
            if table is not None:
                raise UserInputError("tv-embeddings were given but model.network.tv_channels is 0; set it to "
                                     f"their {table[1].numel()} channels")
            return None, None
        embedding = RegionEmbedding(vocab_size, config.tv_channels, [config.tv_width])
        if table is not None:
            weight, bias = table
            if tuple(weight.shape) != tuple(embedding.weight.shape):
                raise UserInputError(f"the tv-embeddings hold {tuple(weight.shape)} for {vocab_size} words, but "
                                     f"model.network.tv_channels={config.tv_channels} and tv_width={config.tv_width} "
                                     f"need {tuple(embedding.weight.shape)}")
            with torch.no_grad():
                embedding.weight.copy_(weight)
                embedding.bias.copy_(bias)
        embedding.requires_grad_(False)
        return embedding, nn.Conv1d(config.tv_channels, self.layers[0].out_channels, 1, bias=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """input_ids (B, L), padded with ``PAD_ID`` on the right → logits (B, num_classes).

        With ``pack_batches`` (the textcnn stack, eager mode) a batch whose padding would cost more
        than :data:`PACK_WHEN_PADDED_OVER` of its positions runs packed (:mod:`textcnn.packing`):
        the same logits, computed over far fewer positions."""
        packed = self.packed_batch(input_ids)
        if packed is not None:
            return self.forward_packed(packed)
        feature_maps, _ = self.feature_maps(input_ids)
        return self.classifier(self.dropout(self.pool(feature_maps, input_ids)))  # pooled (B, C_last [+ D])

    def forward_packed(self, packed: PackedBatch) -> torch.Tensor:
        """Logits (B, num_classes) of a batch :meth:`packed_batch` has already packed, for callers that
        run one batch more than once (adversarial training) and need not pack it each time."""
        maps, _ = self.feature_maps(packed.ids)
        features = segment_max(maps, packed.pooled_segments, packed.num_texts)
        if self.ngrams is not None:
            features = torch.cat([features, self.ngrams.packed(packed)], dim=1)
        return self.classifier(self.dropout(features))

    @property
    def packing_layout(self) -> tuple[int, int]:
        """(align, gap) of this network's packed batches."""
        widths = self.config.kernel_sizes
        if self.tv_embedding is not None:  # its windows must not reach a neighbouring text either
            widths = [[*widths[0], self.config.tv_width], *widths[1:]]
        return packing_layout(widths, self.config.pool_size, self.config.ngram_order)

    def packed_batch(self, input_ids: torch.Tensor) -> Optional[PackedBatch]:
        """The packed batch :meth:`forward` runs for ``input_ids``, or None when it runs them padded."""
        if (not self.pack_batches or self.blocks or input_ids.shape[0] < 2 or torch.jit.is_tracing()
                or torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export()):
            return None  # packing reads the lengths in Python: graphs for export or compilation stay padded
        align, gap = self.packing_layout
        return pack(input_ids, align, gap, max_positions=int((1 - PACK_WHEN_PADDED_OVER) * input_ids.numel()))

    def pool(self, feature_maps: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """The global max over time of the last maps (B, C_last), then the n-gram bag's mean
        embedding (B, D) when the model has one."""
        pooled = feature_maps.amax(dim=2)
        if self.ngrams is None:
            return pooled
        return torch.cat([pooled, self.ngrams(input_ids)], dim=1)

    def feature_maps(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The last layer's maps (B, C_last, L') with padded positions zeroed, and the mask of real
        positions (B, 1, L'); explanations read which position won each feature's max."""
        mask = (input_ids != PAD_ID).unsqueeze(1)  # (B, 1, L)
        if isinstance(self.embedding, RegionEmbedding):
            x = input_ids  # the first layer reads token ids, one-hot
        else:
            x = self.embedding(input_ids)  # (B, L, E)
            if self.static_embedding is not None:
                x = torch.cat([self.static_embedding(input_ids), x], dim=2)  # (B, L, 2E)
            x = self.embedding_dropout(x).transpose(1, 2)  # (B, E, L) (2E channels for multichannel)
            x = x.masked_fill(~mask, 0.0)
        for i, layer in enumerate(self.layers):
            x = layer(x, self.tv_maps(input_ids)) if i == 0 and self.tv_embedding is not None else layer(x)
            x = x.masked_fill(~mask, 0.0)  # (B, C_i, L), ReLU ≥ 0 so zeros never win a max
            if i < len(self.layers) - 1:
                x = F.max_pool1d(x, self.config.pool_size, ceil_mode=True)  # (B, C_i, ⌈L/p⌉)
                mask = mask[:, :, :: self.config.pool_size]  # window j is real iff its first slot is
        for block in self.blocks:
            x, mask = block(x, mask)
        if self.blocks:
            x = F.relu(x)  # non-negative like the textcnn stack's maps, so zeroed padding never wins
        return x, mask

    def tv_maps(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L, C_first) the tv-embedding adds to the first layer's windows before its ReLU."""
        return self.tv_projection(self.tv_embedding(input_ids)).transpose(1, 2)

