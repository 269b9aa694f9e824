"""Useful FLOPs of a TextCNN, counted from its layer shapes: the numerator of model FLOP utilisation.

Only real tokens count; work spent on padding is waste, so it lowers utilisation instead of
inflating it. A multiply-add is 2 FLOPs; training costs about 3× a forward pass (the backward pass
computes gradients for both the inputs and the weights). Region embeddings (``architecture:
region``) are one-hot convolutions run as sums of table rows: additions, which count as none, so
their FLOPs are only the layers above them and the classifier.
"""

from __future__ import annotations

import math

from textcnn.model import TextCNN

TRAINING_FLOPS_PER_FORWARD = 3


def forward_flops(model: TextCNN, num_tokens: int) -> int:
    """FLOPs of one forward pass over a text of ``num_tokens`` real tokens."""
    flops, length = 0, num_tokens
    for i, layer in enumerate(model.layers):
        for conv in getattr(layer, "convs", ()):  # a RegionEmbedding has no multiply-adds
            flops += 2 * conv.in_channels * conv.out_channels * conv.kernel_size[0] * length
        if i < len(model.layers) - 1:
            length = math.ceil(length / model.config.pool_size)
    for block in model.blocks:  # DPCNN residual blocks
        if block.downsample:
            length = math.ceil(length / 2)
        for conv in (block.conv1, block.conv2):
            flops += 2 * conv.in_channels * conv.out_channels * conv.kernel_size[0] * length
    return flops + 2 * model.classifier.in_features * model.classifier.out_features
