import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.flops import TRAINING_FLOPS_PER_FORWARD, forward_flops
from textcnn.model import TextCNN, TextCNNConfig


def test_flops_follow_the_layer_shapes():
    config = TextCNNConfig(embed_dim=10, conv_channels=[4, 6], kernel_sizes=[[3, 5], 2], pool_size=2, ngram_order=0)
    model = TextCNN(vocab_size=20, num_classes=3, config=config)
    first = 2 * 10 * 4 * (3 + 5) * 7  # two widths over 7 tokens
    second = 2 * 8 * 6 * 2 * 4  # 8 input channels over ⌈7/2⌉ = 4 pooled steps
    assert forward_flops(model, 7) == first + second + 2 * 6 * 3


def test_flops_match_torchs_flop_counter_forward_and_training():
    config = TextCNNConfig(embed_dim=16, conv_channels=[8, 8], kernel_sizes=[[3, 4], 3], ngram_order=0)
    model = TextCNN(vocab_size=50, num_classes=2, config=config)
    ids = torch.randint(2, 50, (1, 12))  # no padding: every position is a real token
    with FlopCounterMode(display=False) as forward:
        model.eval()(ids)
    assert forward.get_total_flops() == forward_flops(model, 12)
    with FlopCounterMode(display=False) as training:
        model.train()(ids).sum().backward()
    assert training.get_total_flops() == TRAINING_FLOPS_PER_FORWARD * forward_flops(model, 12)


def test_dpcnn_flops_match_torchs_flop_counter():
    config = TextCNNConfig(embed_dim=16, conv_channels=[8], kernel_sizes=[3], architecture="dpcnn", dpcnn_blocks=2, ngram_order=0)
    model = TextCNN(vocab_size=50, num_classes=2, config=config).eval()
    ids = torch.randint(2, 50, (1, 13))
    with FlopCounterMode(display=False) as forward:
        model(ids)
    block = 2 * 2 * 8 * 8 * 3  # two width-3 convolutions of 8 → 8 channels, per position
    expected = 2 * 16 * 8 * 3 * 13 + block * (13 + 7 + 4) + 2 * 8 * 2  # lengths 13, ⌈13/2⌉, ⌈7/2⌉
    assert forward.get_total_flops() == forward_flops(model, 13) == expected


def test_the_ngram_bag_adds_only_its_share_of_the_classifier():
    """Averaging the bag's rows is additions, not multiply-adds: torch counts none, nor do we."""
    config = TextCNNConfig(embed_dim=16, conv_channels=[8], kernel_sizes=[3], ngram_order=2, ngram_dim=6)
    model = TextCNN(vocab_size=50, num_classes=2, config=config).eval()
    ids = torch.randint(2, 50, (1, 12))
    with FlopCounterMode(display=False) as forward:
        model(ids)
    assert forward.get_total_flops() == forward_flops(model, 12) == 2 * 16 * 8 * 3 * 12 + 2 * (8 + 6) * 2


def test_region_embeddings_count_no_multiply_adds_as_torch_does():
    """A region layer's windows are sums of table rows: only the classifier multiplies."""
    config = TextCNNConfig(architecture="region", embedding_mode="rand", conv_channels=[8], kernel_sizes=[[2, 3]],
                           ngram_order=0)
    model = TextCNN(vocab_size=50, num_classes=2, config=config).eval()
    ids = torch.randint(2, 50, (1, 12))
    with FlopCounterMode(display=False) as forward:
        model(ids)
    assert forward.get_total_flops() == forward_flops(model, 12) == 2 * 16 * 2
