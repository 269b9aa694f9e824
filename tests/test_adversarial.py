"""Adversarial training on the embeddings: the perturbation's size and direction, and a real run."""

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import ROOT, TINY_MODEL_ARGS
from textcnn.errors import UserInputError
from textcnn.model import TextCNN, TextCNNConfig
from textcnn.training.adversarial import adversarial_loss, embedding_output
from textcnn.training.module import TextCNNClassifier

# results that depend on the CPU's kernels: CI runs these a second time with ATEN_CPU_CAPABILITY=default
pytestmark = pytest.mark.numerics


def tiny_model(**network) -> TextCNN:
    torch.manual_seed(0)
    config = TextCNNConfig(embed_dim=8, conv_channels=[6], kernel_sizes=[[2, 3]], ngram_order=0, dropout=0.0,
                           embedding_dropout=0.0, **network)
    return TextCNN(vocab_size=40, num_classes=3, config=config)


def loss_with(model: TextCNN, ids: torch.Tensor, labels: torch.Tensor, perturbation: torch.Tensor) -> float:
    with torch.no_grad(), embedding_output(model.embedding, change=lambda output: output + perturbation):
        return F.cross_entropy(model(ids), labels).item()


def test_the_perturbation_climbs_the_loss_faster_than_a_random_one_of_the_same_size():
    model = tiny_model(embedding_mode="rand")
    ids, labels = torch.randint(2, 40, (4, 9)), torch.tensor([0, 1, 2, 0])
    epsilon = 0.5
    logits, total = adversarial_loss(model, ids, lambda out: F.cross_entropy(out, labels), epsilon)
    clean = F.cross_entropy(logits, labels).item()
    adversarial = total.item() - clean
    random_direction = F.normalize(torch.randn(4, 9 * 8), dim=1).view(4, 9, 8)
    assert adversarial > loss_with(model, ids, labels, epsilon * random_direction) > clean - 0.05
    assert adversarial > clean


def test_the_perturbation_has_size_epsilon_per_row_and_gradients_reach_the_weights():
    model = tiny_model(embedding_mode="rand")
    ids, labels = torch.randint(2, 40, (3, 7)), torch.tensor([0, 1, 2])
    seen = []
    # what the first convolution reads: the embeddings (no dropout, no padding), perturbed or not
    model.layers[0].register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
    _, total = adversarial_loss(model, ids, lambda out: F.cross_entropy(out, labels), epsilon=2.0)
    total.backward()
    clean, perturbed = seen
    assert torch.allclose((perturbed - clean).flatten(1).norm(dim=1), torch.full((3,), 2.0), atol=1e-5)
    assert model.embedding.weight.grad.abs().sum() > 0 and model.classifier.weight.grad.abs().sum() > 0


def test_each_text_gets_the_same_perturbation_in_a_packed_batch_as_padded():
    """Packing lays texts end to end in shared rows; the norm is still each text's own, so the losses match."""
    packed, padded = tiny_model(embedding_mode="rand"), tiny_model(embedding_mode="rand")
    padded.pack_batches = False
    lengths = [3, 20, 4, 2, 5, 3]
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(2, 40, (length,))
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    assert packed.packed_batch(ids) is not None  # mostly padding: this batch runs packed
    loss_of = lambda out: F.cross_entropy(out, labels)  # noqa: E731
    packed_logits, packed_total = adversarial_loss(packed, ids, loss_of, epsilon=3.0)
    padded_logits, padded_total = adversarial_loss(padded, ids, loss_of, epsilon=3.0)
    assert torch.allclose(packed_logits, padded_logits, atol=1e-5)
    assert torch.allclose(packed_total, padded_total, atol=1e-5)
    assert packed_total.item() > 2 * loss_of(packed_logits).item()  # the perturbation did raise the loss


def test_frozen_static_embeddings_are_perturbed_too():
    model = tiny_model(embedding_mode="static")
    ids, labels = torch.randint(2, 40, (2, 6)), torch.tensor([1, 2])
    logits, total = adversarial_loss(model, ids, lambda out: F.cross_entropy(out, labels), epsilon=1.0)
    assert total.item() > F.cross_entropy(logits, labels).item()
    total.backward()
    assert model.embedding.weight.grad is None  # still frozen


def region_model(pack_batches: bool = True) -> TextCNN:
    torch.manual_seed(0)
    config = TextCNNConfig(architecture="region", embedding_mode="rand", conv_channels=[6], kernel_sizes=[[2, 3]],
                           ngram_order=2, ngram_buckets=64, ngram_dim=4, dropout=0.0)
    return TextCNN(vocab_size=40, num_classes=3, config=config, pack_batches=pack_batches)


def test_a_region_network_perturbs_its_window_sums_by_epsilon_per_text_packed_or_padded():
    """A region network reads one-hot tokens: its continuous input is each window's region embedding."""
    lengths = [3, 20, 4, 2, 5, 3]
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(2, 40, (length,))
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    loss_of = lambda out: F.cross_entropy(out, labels)  # noqa: E731
    packed, padded = region_model(), region_model(pack_batches=False)
    assert packed.packed_batch(ids) is not None
    padded_logits, padded_total = adversarial_loss(padded, ids, loss_of, epsilon=2.0)
    # by hand, padded: each text's window sums (B, L, 2 widths · 6 maps) moved 2.0 along the loss's gradient
    with embedding_output(padded.embedding.window_sums) as sums:
        clean_loss = loss_of(padded(ids))
    (gradient,) = torch.autograd.grad(clean_loss, sums[0])
    step = 2.0 * gradient / gradient.flatten(1).norm(dim=1)[:, None, None]  # padding's gradient is zero
    with torch.no_grad(), embedding_output(padded.embedding.window_sums, change=lambda output: output + step):
        by_hand = clean_loss.item() + loss_of(padded(ids)).item()
    assert padded_total.item() == pytest.approx(by_hand, abs=1e-5)
    assert padded_total.item() > 2 * clean_loss.item()  # the perturbation did raise the loss
    packed_logits, packed_total = adversarial_loss(packed, ids, loss_of, epsilon=2.0)
    assert torch.allclose(packed_logits, padded_logits, atol=1e-5)
    assert torch.allclose(packed_total, padded_total, atol=1e-5)
    packed_total.backward()
    assert packed.embedding.weight.grad.abs().sum() > 0


def test_negative_epsilons_are_refused_with_the_fix():
    with pytest.raises(UserInputError, match="adversarial_epsilon must be 0"):
        TextCNNClassifier(vocab_size=30, num_classes=2, adversarial_epsilon=-1.0)


def test_a_run_with_adversarial_training_learns_and_records_epsilon(sst2_slice, tmp_path):
    from textcnn.cli import train

    report = train(["--config", str(ROOT / "configs" / "sst2.yaml"), *TINY_MODEL_ARGS, f"--data.path={sst2_slice}",
                    "--trainer.max_epochs=4", "--model.adversarial_epsilon=1.0",
                    f"--trainer.default_root_dir={tmp_path}"])
    assert report["accuracy"] > 0.62  # chance is 0.5; the plain tiny run passes the same bar
    saved = torch.load(report["checkpoint"], map_location="cpu", weights_only=True)
    assert saved["hyper_parameters"]["adversarial_epsilon"] == 1.0
