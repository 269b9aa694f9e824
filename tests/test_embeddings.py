"""Pretrained vectors and Kim's four embedding variants: coverage, initialisation, what trains and
what stays frozen, and checkpoints that load without the vectors file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import textcnn
from tests.conftest import ROOT, TINY_MODEL_ARGS
from textcnn.inference.checkpoint import read_checkpoint
from textcnn.inference.loader import read_saved_model
from textcnn.data import TextDataModule
from textcnn.data.vectors import GLOVE_6B_50D, _glove_package, pretrained_matrix
from textcnn.errors import UserInputError
from textcnn.training.evaluation import evaluate_checkpoint
from textcnn.training.module import TextCNNClassifier
from textcnn.model import PAD_ID, TextCNN, TextCNNConfig


@pytest.fixture(scope="module")
def glove() -> dict[str, np.ndarray]:
    words, table, _ = _glove_package()
    return {word: vector.copy() for word, vector in zip(words, table)}


@pytest.fixture(scope="module")
def sst2_data(sst2_dir) -> TextDataModule:
    return TextDataModule(path=str(sst2_dir), pretrained_vectors=GLOVE_6B_50D)


def test_glove_covers_the_sst2_vocabulary_and_its_rows_are_the_glove_vectors(sst2_data, glove):
    matrix, coverage = sst2_data.pretrained_embeddings, sst2_data.embedding_coverage
    vocab = sst2_data.tokenizer.get_vocab()
    assert matrix.shape == (sst2_data.vocab_size, 50) and matrix.dtype == torch.float32
    assert coverage.vocab_words == len(vocab) - 2  # without [PAD] and [UNK]
    assert coverage.word_fraction > 0.95 and coverage.token_fraction > 0.99
    assert torch.equal(matrix[vocab["film"]], torch.from_numpy(glove["film"]))
    assert torch.all(matrix[PAD_ID] == 0)


def test_words_without_a_vector_get_a_random_init_with_the_vectors_scale(sst2_data, glove):
    matrix, vocab = sst2_data.pretrained_embeddings, sst2_data.tokenizer.get_vocab()
    missing = [index for word, index in vocab.items() if word not in glove and index != PAD_ID]
    assert len(missing) == sst2_data.vocab_size - 1 - sst2_data.embedding_coverage.words_found
    rows = matrix[missing]
    bound = float(np.sqrt(3) * np.stack(list(glove.values())).std())
    assert rows.abs().max() <= bound and rows.std() == pytest.approx(bound / np.sqrt(3), rel=0.1)
    assert len({tuple(row.tolist()) for row in rows}) == len(missing)  # not one shared vector


def write_glove_file(path, rows: dict[str, list[float]], header: bool = False) -> str:
    lines = [f"{len(rows)} {len(next(iter(rows.values())))}"] if header else []
    lines += [" ".join([word, *map(str, vector)]) for word, vector in rows.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("header", [False, True], ids=["glove", "word2vec"])
def test_a_text_file_of_vectors_is_read_case_insensitively(tmp_path, header):
    source = write_glove_file(tmp_path / "vectors.txt", {"Film": [1, 2, 3], "film": [4, 5, 6], "Dull": [7, 8, 9]}, header)
    vocab = {"[PAD]": 0, "[UNK]": 1, "film": 2, "dull": 3, "gripping": 4}
    matrix, coverage = pretrained_matrix(source, vocab, token_counts=np.array([0, 5, 10, 5, 80]))
    assert matrix[2].tolist() == [4, 5, 6]  # the exact word wins over one that lowercases to it
    assert matrix[3].tolist() == [7, 8, 9]
    assert (coverage.words_found, coverage.vocab_words, coverage.dim) == (2, 3, 3)
    assert coverage.token_fraction == pytest.approx(15 / 100)
    assert matrix[0].tolist() == [0, 0, 0] and matrix[4].abs().sum() > 0


def test_bad_vector_sources_are_one_line_errors(tmp_path):
    vocab = {"[PAD]": 0, "[UNK]": 1, "film": 2}
    with pytest.raises(UserInputError, match="data.pretrained_vectors .*glove-6b-50d"):
        pretrained_matrix(str(tmp_path / "missing.txt"), vocab)
    ragged = tmp_path / "ragged.txt"
    ragged.write_text("film 1 2 3\ndull 1 2\n", encoding="utf-8")
    with pytest.raises(UserInputError, match="cannot read data.pretrained_vectors .*ragged.txt as GloVe text") as error:
        pretrained_matrix(str(ragged), vocab)
    assert "\n" not in str(error.value)
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(b"3 3\nfilm \x00\x00\x80?\x00")
    with pytest.raises(UserInputError, match="as word2vec binary vectors"):
        pretrained_matrix(str(truncated), vocab)


@pytest.mark.parametrize("suffix, binary", [(".bin", True), (".vec", False), (".kv", None)])
def test_word2vec_binary_fasttext_vec_and_gensim_files_are_read_by_gensim(tmp_path, suffix, binary):
    from gensim.models import KeyedVectors

    from textcnn.data.vectors import vectors_format

    vectors = KeyedVectors(vector_size=3)
    vectors.add_vectors(["Film", "film", "Dull"], np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=np.float32))
    path = tmp_path / f"vectors{suffix}"
    if binary is None:
        vectors.save(str(path))
    else:
        vectors.save_word2vec_format(str(path), binary=binary)
    assert vectors_format(path) == {".bin": "word2vec binary", ".vec": "word2vec text", ".kv": "gensim"}[suffix]
    renamed = path.with_suffix(".data")  # the format is told from the bytes too, not only the suffix
    if binary is not None:
        path.rename(renamed)
        assert vectors_format(renamed) == ("word2vec binary" if binary else "word2vec text")
        path = renamed
    matrix, coverage = pretrained_matrix(str(path), {"[PAD]": 0, "[UNK]": 1, "film": 2, "dull": 3, "gripping": 4})
    assert matrix[2].tolist() == [4, 5, 6] and matrix[3].tolist() == [7, 8, 9]
    assert (coverage.words_found, coverage.dim) == (2, 3)


def test_embed_dim_must_match_the_vectors():
    with pytest.raises(UserInputError, match="model.network.embed_dim=50"):
        TextCNN(100, 2, TextCNNConfig(embed_dim=32, embedding_mode="static"), pretrained=torch.randn(100, 50))
    with pytest.raises(UserInputError, match="embedding_mode must be one of rand, static"):
        TextCNNConfig(embedding_mode="dynamic")


def one_training_step(mode: str, matrix: torch.Tensor) -> TextCNNClassifier:
    torch.manual_seed(0)
    network = TextCNNConfig(embed_dim=matrix.shape[1], conv_channels=[8], kernel_sizes=[[3, 4]], embedding_mode=mode)
    module = TextCNNClassifier(matrix.shape[0], 2, network=network, pretrained_embeddings=matrix)
    optimizer = module.configure_optimizers()
    input_ids = torch.randint(2, matrix.shape[0], (16, 12))
    F.cross_entropy(module(input_ids), torch.randint(0, 2, (16,))).backward()
    optimizer.step()
    return module


@pytest.mark.parametrize("mode,trainable", [("static", False), ("non-static", True), ("multichannel", True)])
def test_static_embeddings_stay_frozen_and_non_static_ones_train(mode, trainable):
    matrix = torch.randn(60, 10)
    matrix[PAD_ID] = 0
    model = one_training_step(mode, matrix).model
    assert torch.equal(model.embedding.weight, matrix) is not trainable
    if mode == "multichannel":
        assert torch.equal(model.static_embedding.weight, matrix)  # the frozen channel
        assert all(conv.in_channels == 20 for conv in model.layers[0].convs)  # 2 × embed_dim
    else:
        assert model.static_embedding is None and model.layers[0].convs[0].in_channels == 10


def test_vectors_with_rand_or_a_pretrained_mode_without_vectors_are_refused(sst2_slice, tmp_path):
    from textcnn.cli import train

    base = ["--config", str(ROOT / "configs" / "sst2_kim.yaml"), *TINY_MODEL_ARGS, f"--data.path={sst2_slice}",
            "--trainer.max_epochs=1", f"--trainer.default_root_dir={tmp_path}", "--model.network.embed_dim=50"]
    with pytest.raises(UserInputError, match="data.pretrained_vectors=glove-6b-50d"):
        train([*base, "--model.network.embedding_mode=static"])
    with pytest.raises(UserInputError, match="embedding_mode is 'rand'"):
        train([*base, f"--data.pretrained_vectors={GLOVE_6B_50D}"])


@pytest.mark.slow
def test_a_multichannel_checkpoint_from_word2vec_binary_vectors_predicts_identically_without_the_file(sst2_slice, tmp_path, glove):
    from textcnn.cli import train

    from gensim.models import KeyedVectors

    vocab = TextDataModule(path=str(sst2_slice)).tokenizer.get_vocab()
    known = [w for w in vocab if w in glove]
    binary = KeyedVectors(vector_size=50)
    binary.add_vectors(known, np.stack([glove[w] for w in known]))
    vectors = str(tmp_path / "vectors.bin")  # word2vec binary, the format published vectors ship in
    binary.save_word2vec_format(vectors, binary=True)
    report = train(
        ["--config", str(ROOT / "configs" / "sst2_kim.yaml"), *TINY_MODEL_ARGS, f"--data.path={sst2_slice}",
         "--model.network.embed_dim=50", "--model.network.embedding_mode=multichannel",
         f"--data.pretrained_vectors={vectors}", "--trainer.max_epochs=2", f"--trainer.default_root_dir={tmp_path}"]
    )
    (tmp_path / "vectors.bin").unlink()
    checkpoint = read_checkpoint(report["checkpoint"])
    assert "pretrained_embeddings" not in checkpoint["hyper_parameters"]
    assert checkpoint["hyper_parameters"]["network"]["embedding_mode"] == "multichannel"
    model = read_saved_model(report["checkpoint"]).network()
    frozen = model.static_embedding.weight
    assert torch.allclose(frozen[vocab["film"]], torch.from_numpy(glove["film"]))  # the frozen channel kept GloVe
    assert not torch.allclose(model.embedding.weight[vocab["film"]], frozen[vocab["film"]])  # the other trained
    assert evaluate_checkpoint(report["checkpoint"])["accuracy"] == report["accuracy"] > 0.55
    texts = ["a gripping , funny film", "dull and lifeless", "it is not bad at all"]
    predictor = textcnn.load(report["checkpoint"])
    with torch.no_grad():
        expected = model(predictor.batch(texts)).softmax(-1)
    assert torch.allclose(predictor.predict_proba(texts), expected, atol=1e-6)
