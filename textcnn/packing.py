"""Packed batches: a padded batch's texts laid end to end in a few rows, so the convolutions run over
real tokens instead of padding.

A padded batch of short texts is mostly padding (on SST-2 44% of the positions are real tokens), and
every convolution runs over all of it. :func:`pack` moves each text into a *slot* of a few long
rows, with zeros (``PAD_ID``) after it, so that the stacked layers of :class:`textcnn.model.TextCNN`
compute exactly what they compute on the padded batch:

* every slot starts at a multiple of ``align`` = pool_size^(layers-1), so each max-pool window lies
  inside one slot, at every layer, as it does from the start of a padded row;
* the zeros after a text (``gap``) outlast every layer's convolution reach (and the n-gram bag's
  reach), so no window, at any layer, sees two texts;
* the global max-pool and the n-gram mean are taken per slot (``segments``) instead of per row.

Padding zeros are what the padded path sees beyond a text too, so the logits of every text are
its logits in the padded batch, which are its logits alone (tests/test_packing.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

PAD_ID = 0


@dataclass
class PackedBatch:
    """``ids`` (rows, row_length) token ids; ``segments`` (rows, row_length): the text (0…B-1) whose
    slot holds each position, ``B`` for the unused end of a row; ``num_texts`` B; ``align``: slots
    start at multiples of it."""

    ids: torch.Tensor
    segments: torch.Tensor
    num_texts: int
    align: int

    @property
    def pooled_segments(self) -> torch.Tensor:
        """The segment of each position of the last layer, after pools of ``align`` tokens in all."""
        return self.segments[:, :: self.align]


def layout(kernel_sizes: list[list[int]], pool_size: int, ngram_order: int) -> tuple[int, int]:
    """(align, gap) for a textcnn stack: slots start at multiples of ``align`` tokens and hold at
    least ``gap`` zeros after their text.

    A width-k convolution reaches k//2 positions past a text's last one (and (k-1)//2 before its
    first). After i pools a position stands for q = pool_size^i tokens and a text of n tokens fills
    ⌈n/q⌉ of them, so a slot of n + g tokens, rounded up to a multiple of q, leaves at least
    ⌈(g+1)/q⌉ - 1 zero positions after the text (fewest when n is one past a multiple of q): layer i
    needs g ≥ q·(k_max//2). The n-gram bag's n-grams reach ``ngram_order - 1`` tokens past their first.
    """
    align = pool_size ** (len(kernel_sizes) - 1)
    gap = max(ngram_order - 1, 0)
    for layer, widths in enumerate(kernel_sizes):
        gap = max(gap, pool_size**layer * (max(widths) // 2))
    return align, gap


def pack(input_ids: torch.Tensor, align: int, gap: int, rows: int = 4,
         max_positions: Optional[int] = None) -> Optional[PackedBatch]:
    """Lay the texts of ``input_ids`` (B, L), each padded on the right, end to end in about ``rows``
    rows (more when they do not fit). Segment ids keep the batch's order; a text may hold
    ``PAD_ID`` inside it (it is moved as it is). None when the packed rows would hold more than
    ``max_positions`` positions."""
    batch, length = input_ids.shape
    positions = torch.arange(1, length + 1, device=input_ids.device)
    spans = ((input_ids != PAD_ID) * positions).amax(dim=1)  # up to the last real token
    slots = [-(-(span + gap) // align) * align for span in spans.tolist()]
    row_length = max(max(slots), -(-sum(slots) // (rows * align)) * align)
    fills: list[int] = []  # first fit, longest slot first: rows end up nearly full
    starts = [0] * batch
    for text in sorted(range(batch), key=lambda text: -slots[text]):
        row = next((row for row, fill in enumerate(fills) if fill + slots[text] <= row_length), len(fills))
        if row == len(fills):
            fills.append(0)
        starts[text] = row * row_length + fills[row]
        fills[row] += slots[text]
    if max_positions is not None and len(fills) * row_length > max_positions:
        return None
    # every position's segment: slots in the order they lie, each row's unused end as segment B
    order = sorted(range(batch), key=lambda text: starts[text])
    segment_ids, segment_lengths, end = [], [], 0
    for text in order:
        if starts[text] > end:
            segment_ids.append(batch)
            segment_lengths.append(starts[text] - end)
        segment_ids.append(text)
        segment_lengths.append(slots[text])
        end = starts[text] + slots[text]
    total_rows = len(fills)
    segment_ids.append(batch)
    segment_lengths.append(total_rows * row_length - end)
    device = input_ids.device
    flat = torch.full((total_rows * row_length,), PAD_ID, dtype=input_ids.dtype, device=device)
    real = positions.unsqueeze(0) <= spans.unsqueeze(1)  # (B, L): every position up to the span
    destinations = torch.tensor(starts, device=device).unsqueeze(1) + positions.unsqueeze(0) - 1
    flat[destinations[real]] = input_ids[real]
    segments = torch.repeat_interleave(torch.tensor(segment_ids, device=device),
                                       torch.tensor(segment_lengths, device=device))
    return PackedBatch(flat.view(total_rows, row_length), segments.view(total_rows, row_length), batch, align)


def segment_max(values: torch.Tensor, segments: torch.Tensor, num_texts: int) -> torch.Tensor:
    """The max over each text's positions of non-negative maps ``values`` (R, C, L') → (B, C).

    Starting from zeros matches the padded path, whose rows hold zeros after a text: a text's max
    over its real, non-negative activations is unchanged by them."""
    channels = values.shape[1]
    flat = values.transpose(1, 2).reshape(-1, channels)  # (R·L', C)
    index = segments.reshape(-1, 1).expand(-1, channels)
    pooled = values.new_zeros(num_texts + 1, channels).scatter_reduce(0, index, flat, "amax", include_self=True)
    return pooled[:num_texts]


def segment_mean(values: torch.Tensor, real: torch.Tensor, segments: torch.Tensor, num_texts: int) -> torch.Tensor:
    """The mean of ``values`` (R, N, D) over each text's ``real`` (R, N) positions → (B, D)."""
    dim = values.shape[2]
    index = segments.reshape(-1)
    kept = values.masked_fill(~real.unsqueeze(2), 0.0).reshape(-1, dim)
    total = values.new_zeros(num_texts + 1, dim).index_add(0, index, kept)
    count = values.new_zeros(num_texts + 1).index_add(0, index, real.reshape(-1).to(values.dtype))
    return (total / count.clamp(min=1).unsqueeze(1))[:num_texts]
