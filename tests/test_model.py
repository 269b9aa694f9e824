import pytest
import torch

from textcnn.errors import UserInputError
from textcnn.model import PAD_ID, TextCNN, TextCNNConfig

# results that depend on the CPU's kernels: CI runs these a second time with ATEN_CPU_CAPABILITY=default
pytestmark = pytest.mark.numerics


def make_model(**overrides) -> TextCNN:
    """A network of the given shape; without the n-gram bag unless ``ngram_order`` is given."""
    torch.manual_seed(0)
    return TextCNN(vocab_size=50, num_classes=3, config=TextCNNConfig(**{"ngram_order": 0, **overrides})).eval()


def conv_inputs(model: TextCNN, input_ids: torch.Tensor) -> list[tuple[torch.Size, torch.Size]]:
    """(input shape, output shape) of each conv layer in a forward pass."""
    shapes = []
    hooks = [layer.register_forward_hook(lambda m, args, out: shapes.append((args[0].shape, out.shape)))
             for layer in model.layers]
    model(input_ids)
    for hook in hooks:
        hook.remove()
    return shapes


def test_embedding_dims_are_the_first_conv_input_channels():
    model = make_model(embed_dim=24, conv_channels=[16], kernel_sizes=[3])
    (inputs, _), = conv_inputs(model, torch.randint(2, 50, (4, 11)))
    assert inputs == (4, 24, 11)  # (B, E, L)
    assert model.layers[0].convs[0].in_channels == 24


def test_stacked_layers_have_the_configured_varied_output_channels():
    model = make_model(embed_dim=8, conv_channels=[16, 32, 24], kernel_sizes=[3, 5, 3], pool_size=2)
    shapes = conv_inputs(model, torch.randint(2, 50, (2, 20)))
    assert [out[1] for _, out in shapes] == [16, 32, 24]
    assert [inp[1] for inp, _ in shapes] == [8, 16, 32]  # each layer's input is the previous output
    assert [out[2] for _, out in shapes] == [20, 10, 5]  # max-pooling halves the length between layers
    assert model.classifier.in_features == 24


def test_kim_parallel_widths_concatenate_their_maps():
    model = make_model(embed_dim=16, conv_channels=[100], kernel_sizes=[[3, 4, 5]])
    assert [conv.kernel_size[0] for conv in model.layers[0].convs] == [3, 4, 5]
    assert model.classifier.in_features == 300
    assert model(torch.randint(2, 50, (3, 7))).shape == (3, 3)


def _right_pad(rows: list[list[int]]) -> torch.Tensor:
    length = max(map(len, rows))
    return torch.tensor([row + [PAD_ID] * (length - len(row)) for row in rows])


@pytest.mark.parametrize(
    "overrides",
    [
        dict(conv_channels=[16, 32, 24], kernel_sizes=[3, 4, 3], pool_size=2),
        dict(conv_channels=[8, 8], kernel_sizes=[[2, 5], [3]], pool_size=3),
        dict(conv_channels=[10], kernel_sizes=[[3, 4, 5]]),
        dict(conv_channels=[8], kernel_sizes=[3], architecture="dpcnn", dpcnn_blocks=3),
        dict(conv_channels=[8, 8], kernel_sizes=[[3, 4], 3], ngram_order=3, ngram_buckets=64, ngram_dim=6),
        dict(conv_channels=[8, 6], kernel_sizes=[4, 3], architecture="region", embedding_mode="rand", ngram_order=2,
             ngram_buckets=64, ngram_dim=6),
        dict(conv_channels=[8], kernel_sizes=[[2, 3]], architecture="region", embedding_mode="rand"),
    ],
)
def test_a_text_scores_the_same_alone_and_inside_a_padded_batch(overrides):
    model = make_model(embed_dim=12, **overrides)
    with torch.no_grad():  # padding must not win even when its embedding is large
        model.embedding.weight[PAD_ID] = 50.0
        if model.ngrams is not None:  # nor count in the n-gram mean
            model.ngrams.embedding.weight[PAD_ID] = 50.0
    generator = torch.Generator().manual_seed(1)
    texts = [torch.randint(2, 50, (n,), generator=generator).tolist() for n in (1, 2, 5, 7, 13, 30)]
    batched = model(_right_pad(texts))
    for row, ids in enumerate(texts):
        alone = model(torch.tensor([ids]))
        torch.testing.assert_close(batched[row : row + 1], alone, rtol=0, atol=1e-5)


def test_texts_shorter_than_the_widest_kernel_get_finite_logits():
    model = make_model(embed_dim=8, conv_channels=[6, 6], kernel_sizes=[[3, 4, 5], [5]])
    logits = model(torch.tensor([[7]]))
    assert logits.shape == (1, 3) and torch.isfinite(logits).all()
    padded = model(torch.tensor([[7] + [PAD_ID] * 9]))
    torch.testing.assert_close(logits, padded, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(conv_channels=[8, 8], kernel_sizes=[3]), "kernel_sizes"),
        (dict(conv_channels=[], kernel_sizes=[]), "conv_channels"),
        (dict(dropout=1.5), "dropout"),
        (dict(embed_dim=0), "embed_dim"),
        (dict(architecture="resnet"), "architecture"),
        (dict(architecture="dpcnn", conv_channels=[8, 8], kernel_sizes=[3, 3]), "dpcnn_blocks"),
        (dict(ngram_order=-1), "ngram_order"),
        (dict(architecture="region", conv_channels=[8], kernel_sizes=[3]), "embedding_mode=rand"),
        (dict(ngram_order=2, ngram_buckets=0), "ngram_buckets"),
    ],
)
def test_bad_architecture_names_the_field(overrides, field):
    with pytest.raises(UserInputError, match=field):
        TextCNNConfig(**overrides)


def test_dpcnn_blocks_halve_the_length_and_keep_the_channels():
    model = make_model(embed_dim=12, conv_channels=[16], kernel_sizes=[3], architecture="dpcnn", dpcnn_blocks=3)
    shapes = []
    for block in model.blocks:
        block.register_forward_hook(lambda m, args, out: shapes.append(tuple(out[0].shape[1:])))
    logits = model(torch.randint(2, 50, (2, 40)))
    assert logits.shape == (2, 3)
    assert shapes == [(16, 40), (16, 20), (16, 10), (16, 5)]  # (channels, length) after each block
    assert [block.downsample for block in model.blocks] == [False, True, True, True]


def test_dpcnn_shortcut_carries_the_gradient_to_the_region_embedding():
    model = make_model(embed_dim=8, conv_channels=[8], kernel_sizes=[3], architecture="dpcnn", dpcnn_blocks=2).train()
    for block in model.blocks:  # with every block's convolutions dead, only the shortcuts are left
        for conv in (block.conv1, block.conv2):
            torch.nn.init.zeros_(conv.weight), torch.nn.init.zeros_(conv.bias)
    model(torch.randint(2, 50, (2, 9))).sum().backward()
    assert model.layers[0].convs[0].weight.grad.abs().sum() > 0


def test_dropout_keeps_the_expected_value_and_drops_the_configured_share():
    from textcnn.model import Dropout

    torch.manual_seed(0)
    dropout, x = Dropout(0.3), torch.ones(200_000)
    y = dropout.train()(x)
    assert (y == 0).float().mean().item() == pytest.approx(0.3, abs=0.01)
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)  # kept values are scaled by 1 / (1 - p)
    assert torch.equal(dropout.eval()(x), x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert dropout.train()(x.bfloat16()).dtype == torch.bfloat16


def test_ngram_bag_rows_are_unigram_ids_then_hashed_ngrams_and_padding_is_left_out():
    model = make_model(embed_dim=8, conv_channels=[4], kernel_sizes=[3], ngram_order=3, ngram_buckets=1000, ngram_dim=4)
    bag = model.ngrams
    rows = bag.ngram_ids(torch.tensor([[5, 6, 7, PAD_ID], [5, 6, 7, 8]]))  # (B, 3·L): unigrams, bigrams, trigrams
    bigram = 50 + (5 * bag.HASH_BASE + 6) % 1000
    trigram = 50 + (((5 * bag.HASH_BASE + 6) % 1000) * bag.HASH_BASE + 7) % 1000
    assert rows[0].tolist() == [5, 6, 7, 0, bigram, rows[0, 5].item(), 0, 0, trigram, 0, 0, 0]
    assert rows[1, :4].tolist() == [5, 6, 7, 8] and (rows[1, 4:7] >= 50).all() and (rows[1, 8:10] >= 50).all()
    assert rows[1, [7, 10, 11]].tolist() == [0, 0, 0]  # n-grams that run past the text's end
    assert torch.equal(rows[0, 4:6], rows[1, 4:6])  # the same bigram gets the same row in any text
    # the bag is the mean of the real n-grams' rows
    expected = bag.embedding.weight[[5, 6, 7, bigram, rows[0, 5].item(), trigram]].mean(dim=0)
    torch.testing.assert_close(bag(torch.tensor([[5, 6, 7, PAD_ID]]))[0], expected)


def test_ngram_bag_feeds_the_classifier_beside_the_convolutions():
    model = make_model(embed_dim=8, conv_channels=[10], kernel_sizes=[3], ngram_order=2, ngram_dim=6)
    assert model.classifier.in_features == 10 + 6
    assert model.ngrams.embedding.num_embeddings == 50 + model.config.ngram_buckets
    model.train()(torch.randint(2, 50, (3, 9))).sum().backward()
    assert model.ngrams.embedding.weight.grad.abs().sum() > 0
    assert make_model(embed_dim=8, conv_channels=[10], kernel_sizes=[3], ngram_order=0).ngrams is None  # Kim's network
    assert TextCNNConfig().ngram_order == 2  # the default recipe has the bag


@pytest.mark.parametrize("widths", [[1], [2], [3], [4], [2, 3], [3, 1, 4]])
def test_the_region_embedding_is_a_conv1d_over_one_hot_tokens(widths):
    """Each width's part of the table is a Conv1d's weight over one-hot inputs; parallel widths are
    concatenated in order, as ConvLayer's are."""
    model = make_model(architecture="region", embedding_mode="rand", conv_channels=[7], kernel_sizes=[widths])
    region = model.layers[0]
    with torch.no_grad():
        region.bias.normal_()
    ids = torch.tensor([[5, 9, 9, 31, 2, 49, PAD_ID, PAD_ID], [3, 1, 4, 1, 5, 9, 2, 6]])
    one_hot = torch.nn.functional.one_hot(ids, 50).float().masked_fill((ids == PAD_ID)[:, :, None], 0.0)
    expected, start = [], 0
    for width in widths:
        conv = torch.nn.Conv1d(50, 7, width)  # vocabulary-many input channels
        with torch.no_grad():  # weight[c, v, j] is what token v adds to map c at offset j
            conv.weight.copy_(region.weight[:, start:start + width * 7].reshape(50, width, 7).permute(2, 0, 1))
            conv.bias.copy_(region.bias[7 * len(expected):7 * (len(expected) + 1)])
            same = torch.nn.functional.pad(one_hot.transpose(1, 2), ((width - 1) // 2, width // 2))
            expected.append(torch.relu(conv(same)))
        start += width * 7
    assert region.out_channels == 7 * len(widths)
    with torch.no_grad():
        torch.testing.assert_close(region(ids), torch.cat(expected, dim=1), rtol=0, atol=1e-6)


@pytest.mark.parametrize("widths", [[3], [2, 3]])
def test_the_region_embeddings_export_path_matches_the_training_path(widths):
    """ONNX export traces the shifted sums; training runs the window bags: same values, same gradients."""
    model = make_model(architecture="region", embedding_mode="rand", conv_channels=[5], kernel_sizes=[widths])
    region = model.layers[0]
    with torch.no_grad():
        region.weight[PAD_ID] = 50.0  # padding must count in neither path
    ids = torch.tensor([[5, 9, 9, 31, 2, 49, PAD_ID, PAD_ID], [3, 1, 4, 1, 5, 9, 2, 6]])
    gradients = []
    for path in (region.window_bags, region.shifted_sums):
        region.zero_grad()
        out = path(ids)
        (out * torch.arange(out.numel()).view_as(out).sin()).sum().backward()
        gradients.append(region.weight.grad.clone())
    torch.testing.assert_close(region.window_bags(ids), region.shifted_sums(ids), rtol=0, atol=1e-6)
    torch.testing.assert_close(gradients[0], gradients[1], rtol=0, atol=1e-6)


def test_the_region_architecture_refuses_pretrained_vectors():
    config = TextCNNConfig(architecture="region", embedding_mode="rand", conv_channels=[8], kernel_sizes=[3])
    with pytest.raises(UserInputError, match="pretrained_vectors=null"):
        TextCNN(vocab_size=50, num_classes=2, config=config, pretrained=torch.zeros(50, 50))
