"""Packed batches compute what padded batches compute: every text's logits (and the gradients) are
the same, for any stack of widths and pools, with or without the n-gram bag."""

import pytest
import torch

from textcnn import packing
from textcnn.model import PAD_ID, TextCNN, TextCNNConfig

# results that depend on the CPU's kernels: CI runs these a second time with ATEN_CPU_CAPABILITY=default
pytestmark = pytest.mark.numerics

NETWORKS = {
    "default recipe": {},
    "kim": dict(conv_channels=[20], kernel_sizes=[[3, 4, 5]], ngram_order=0),
    "three layers, pool 3": dict(conv_channels=[8, 12, 6], kernel_sizes=[[2, 7], 5, 3], pool_size=3, ngram_order=3,
                                 ngram_buckets=64),
    "even widths, no pooling": dict(conv_channels=[8, 8], kernel_sizes=[[2, 4, 6], 2], pool_size=1),
    "two pools of 2": dict(conv_channels=[8, 8, 8], kernel_sizes=[[3, 4, 5], 4, 3], pool_size=2),
    "region embedding": dict(architecture="region", embedding_mode="rand", conv_channels=[8, 8], kernel_sizes=[4, 3]),
    "region embeddings of two widths": dict(architecture="region", embedding_mode="rand", conv_channels=[8],
                                            kernel_sizes=[[2, 3]]),
}


# the exactness tests run on a CUDA GPU too where there is one, with TF32 off (cuDNN's default uses it for
# convolutions, whose 10-bit mantissas would differ between any two shapes, packed or not)
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"))]


@pytest.fixture
def device(request, monkeypatch):
    if request.param == "cuda":
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
        monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    return torch.device(request.param)


def make_model(device: torch.device = torch.device("cpu"), **overrides) -> TextCNN:
    torch.manual_seed(0)
    config = TextCNNConfig(**{"embed_dim": 12, "conv_channels": [16, 24], "ngram_buckets": 128, **overrides})
    model = TextCNN(vocab_size=60, num_classes=3, config=config).eval().to(device)
    with torch.no_grad():  # padding and gaps must lose every max and stay out of every mean
        model.embedding.weight[PAD_ID] = 50.0
        if model.ngrams is not None:
            model.ngrams.embedding.weight[PAD_ID] = 50.0
    return model


def padded_batch(lengths: list[int], seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.full((len(lengths), max(lengths)), PAD_ID)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(1, 60, (length,), generator=generator)
    return ids


LENGTHS = [0, 1, 2, 3, 5, 7, 8, 9, 13, 16, 17, 31, 40, 2, 1, 64, 4, 6, 11, 3]


def logits(model: TextCNN, ids: torch.Tensor, pack: bool) -> torch.Tensor:
    model.pack_batches = pack
    return model(ids)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("overrides", NETWORKS.values(), ids=NETWORKS.keys())
def test_packed_logits_equal_padded_and_alone(overrides, device, monkeypatch):
    monkeypatch.setattr("textcnn.model.PACK_WHEN_PADDED_OVER", 0.0)  # pack whenever it saves a position
    model, ids = make_model(device, **overrides), padded_batch(LENGTHS).to(device)
    assert model.packed_batch(ids) is not None
    with torch.no_grad():
        packed, padded = logits(model, ids, pack=True), logits(model, ids, pack=False)
        torch.testing.assert_close(packed, padded, rtol=0, atol=1e-6)
        for row, length in enumerate(LENGTHS):
            alone = model(ids[row : row + 1, : max(length, model.config.widest_kernel)])
            torch.testing.assert_close(packed[row : row + 1], alone, rtol=0, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("overrides", list(NETWORKS.values())[:3], ids=list(NETWORKS)[:3])
def test_packed_gradients_equal_padded(overrides, device, monkeypatch):
    monkeypatch.setattr("textcnn.model.PACK_WHEN_PADDED_OVER", 0.0)
    ids, targets = padded_batch(LENGTHS).to(device), (torch.arange(len(LENGTHS)) % 3).to(device)
    gradients = []
    for pack in (True, False):
        model = make_model(device, **overrides, dropout=0.0, embedding_dropout=0.0).train()
        torch.nn.functional.cross_entropy(logits(model, ids, pack), targets).backward()
        gradients.append({name: p.grad for name, p in model.named_parameters() if p.grad is not None})
    assert gradients[0].keys() == gradients[1].keys()
    for name in gradients[0]:
        torch.testing.assert_close(gradients[0][name], gradients[1][name], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("overrides", list(NETWORKS.values())[:3], ids=list(NETWORKS)[:3])
def test_one_zero_fewer_between_texts_lets_a_window_see_two_texts(overrides):
    """The gap of :func:`packing.layout` is the narrowest that keeps the texts apart."""
    model, ids = make_model(**overrides), padded_batch(LENGTHS)
    align, gap = model.packing_layout
    model.pack_batches = False
    with torch.no_grad():
        padded = model(ids)
        too_close = packing.pack(ids, align, gap - 1)
        maps, _ = model.feature_maps(too_close.ids)
        features = packing.segment_max(maps, too_close.pooled_segments, too_close.num_texts)
        if model.ngrams is not None:
            features = torch.cat([features, model.ngrams.packed(too_close)], dim=1)
        assert not torch.allclose(model.classifier(features), padded, atol=1e-4)


def test_slots_start_aligned_and_hold_their_text_then_zeros():
    ids = padded_batch([5, 0, 12, 3])
    batch = packing.pack(ids, align=4, gap=3, rows=2)
    flat_ids, flat_segments = batch.ids.reshape(-1), batch.segments.reshape(-1)
    for text, length in enumerate([5, 0, 12, 3]):
        where = (flat_segments == text).nonzero().squeeze(1)
        start, size = int(where[0]), len(where)
        assert start % 4 == 0 and size % 4 == 0 and size >= length + 3
        assert torch.equal(flat_ids[start : start + length], ids[text, :length])
        assert (flat_ids[start + length : start + size] == PAD_ID).all()
    assert (flat_ids[flat_segments == 4] == PAD_ID).all()  # the unused ends of rows


def test_a_text_with_padding_inside_is_moved_whole():
    ids = torch.tensor([[7, PAD_ID, 9, PAD_ID], [5, 6, 7, 8], [3, PAD_ID, PAD_ID, PAD_ID]])
    batch = packing.pack(ids, align=1, gap=2)
    first = batch.ids.reshape(-1)[batch.segments.reshape(-1) == 0]
    assert first[:3].tolist() == [7, PAD_ID, 9]


def test_packing_is_skipped_when_it_saves_little():
    model = make_model()
    assert model.packed_batch(padded_batch([20] * 8)) is None  # equal lengths: nothing to save
    assert model.packed_batch(padded_batch([60] + [5] * 15)) is not None


def test_real_sst2_batches_run_packed_with_the_logits_of_the_padded_path(sst2_slice):
    from textcnn.data import TextDataModule

    data = TextDataModule(path=str(sst2_slice), batch_size=64, min_length=5)
    model = TextCNN(data.vocab_size, data.num_classes, TextCNNConfig()).eval()
    ids = next(iter(data.dataloader("train", shuffle=True)))["input_ids"]
    packed = model.packed_batch(ids)
    assert packed is not None and packed.ids.numel() < 0.75 * ids.numel()
    with torch.no_grad():
        torch.testing.assert_close(logits(model, ids, True), logits(model, ids, False), rtol=0, atol=1e-6)


def test_dpcnn_and_exported_graphs_stay_padded():
    model = make_model(conv_channels=[8], kernel_sizes=[3], architecture="dpcnn", dpcnn_blocks=2)
    assert model.packed_batch(padded_batch(LENGTHS)) is None
