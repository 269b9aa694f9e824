"""Adversarial training on the embeddings (Goodfellow et al. 2015; Miyato et al. 2017 for text).

Each step also trains on the batch with its embeddings moved a distance ε in the direction that
raises the loss most (the loss's gradient with respect to the embeddings, normalised per text), so
the classifier must be right within a ball around every text rather than at its exact vectors. Words
are discrete, so the perturbation is made where the input is continuous: the word embedding lookup's
output, or for a region network (one-hot input) its region embeddings, each window's sum before bias
and ReLU. The cost is a second forward pass and a larger backward pass per step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Optional

import torch
from torch import nn

from textcnn.model import RegionEmbedding, TextCNN
from textcnn.packing import PackedBatch


def perturbable_embedding(model: TextCNN) -> nn.Module:
    """The module whose output (rows, L, dim) is perturbed: the trainable word embeddings (multichannel's
    frozen copy stays clean), or a region network's window sums."""
    if isinstance(model.embedding, RegionEmbedding):
        return model.embedding.window_sums
    return model.embedding


@contextmanager
def embedding_output(embedding: nn.Module, change: Optional[Callable[[torch.Tensor], torch.Tensor]] = None
                     ) -> Iterator[list[torch.Tensor]]:
    """While open, every output of ``embedding`` is appended to the yielded list, after ``change``."""
    outputs: list[torch.Tensor] = []

    def hook(module, inputs, output):
        output = change(output) if change is not None else output
        outputs.append(output)
        return output

    handle = embedding.register_forward_hook(hook)
    try:
        yield outputs
    finally:
        handle.remove()


def adversarial_loss(model: TextCNN, input_ids: torch.Tensor, loss_of: Callable[[torch.Tensor], torch.Tensor],
                     epsilon: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean logits, clean loss + adversarial loss) of one batch.

    Each text's perturbation r = ε·g/‖g‖ has norm ε whether its batch runs padded or packed (the
    norm is taken over the text's own positions), and is a constant: no gradient flows through its
    direction."""
    embedding = perturbable_embedding(model)
    packed = model.packed_batch(input_ids)  # packed once for both passes, or None: both run padded
    run = (lambda: model.forward_packed(packed)) if packed is not None else (lambda: model(input_ids))
    # frozen (static) embeddings have no gradient of their own: their output becomes a leaf that has one
    with embedding_output(embedding, change=lambda output: output if output.requires_grad
                          else output.detach().requires_grad_()) as clean:
        logits = run()
    loss = loss_of(logits)
    (gradient,) = torch.autograd.grad(loss, clean[0], retain_graph=True)  # (rows, L, E) as the network ran
    segments = text_of_each_position(input_ids, packed)
    squares = torch.zeros(input_ids.shape[0] + 1, dtype=gradient.dtype, device=gradient.device)
    squares.index_add_(0, segments.flatten(), gradient.detach().square().sum(dim=2).flatten())
    norms = squares.sqrt().clamp(min=1e-12)[segments]  # (rows, L): each position's text's gradient norm
    perturbation = epsilon * gradient.detach() / norms.unsqueeze(2)
    with embedding_output(embedding, change=lambda output: output + perturbation):
        adversarial_logits = run()
    return logits, loss + loss_of(adversarial_logits)


def text_of_each_position(input_ids: torch.Tensor, packed: Optional[PackedBatch]) -> torch.Tensor:
    """(rows, L) the text (0…B-1) at each position of the embedding output the network computes
    for ``input_ids`` (B, L), packed as ``packed`` or padded (None); padding and unused positions get B,
    or their row's text (their gradient is zero)."""
    if packed is not None:
        return packed.segments
    rows = torch.arange(input_ids.shape[0], device=input_ids.device)
    return rows[:, None].expand_as(input_ids)
