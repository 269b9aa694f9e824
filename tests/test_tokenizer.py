import datasets
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from textcnn.errors import UserInputError
from textcnn.model import PAD_ID
from textcnn.tokenizer import UNK_ID, encode, load_tokenizer, pad_batch, tokenizer_from_json, train_tokenizer


@pytest.fixture(scope="module")
def sst2_texts(sst2_dir) -> list[str]:
    return datasets.load_dataset(str(sst2_dir), split="train")["text"]


@pytest.fixture(scope="module")
def word_tokenizer(sst2_texts):
    return train_tokenizer(sst2_texts, kind="word", vocab_size=5000, min_frequency=2)


def test_special_tokens_have_fixed_ids(word_tokenizer):
    assert word_tokenizer.token_to_id("[PAD]") == PAD_ID == 0
    assert word_tokenizer.token_to_id("[UNK]") == UNK_ID == 1
    assert word_tokenizer.get_vocab_size() == 5000


def test_words_are_lowercased_and_split_from_punctuation(word_tokenizer):
    ids = encode(word_tokenizer, ["A FUNNY, moving film!"], max_length=32)[0]
    assert [word_tokenizer.id_to_token(i) for i in ids] == ["a", "funny", ",", "moving", "film", "!"]


def test_unknown_words_empty_texts_and_literal_special_tokens(word_tokenizer):
    unknown, empty, literal = encode(word_tokenizer, ["zzqxv", "   ", "[PAD] [PAD]"], max_length=8)
    assert unknown == [UNK_ID] and empty == [UNK_ID]
    assert PAD_ID not in literal  # user text can never turn into padding


def test_truncation_to_max_length(word_tokenizer):
    assert len(encode(word_tokenizer, ["good " * 100], max_length=16)[0]) == 16


def test_json_round_trip_gives_identical_ids(word_tokenizer, sst2_texts, tmp_path):
    path = tmp_path / "tokenizer.json"
    path.write_text(word_tokenizer.to_str(), encoding="utf-8")
    sample = sst2_texts[:200]
    original = encode(word_tokenizer, sample, 64)
    assert encode(tokenizer_from_json(word_tokenizer.to_str()), sample, 64) == original
    assert encode(load_tokenizer(path), sample, 64) == original


@pytest.mark.parametrize("kind", ["wordpiece", "bpe"])
def test_subword_tokenizers_cover_unseen_words(kind, sst2_texts):
    tokenizer = train_tokenizer(sst2_texts, kind=kind, vocab_size=3000)
    assert tokenizer.token_to_id("[PAD]") == 0 and tokenizer.token_to_id("[UNK]") == 1
    ids = encode(tokenizer, ["unfilmable"], max_length=16)[0]
    assert len(ids) > 1 and UNK_ID not in ids  # split into known pieces instead of [UNK]


def test_load_tokenizer_rejects_missing_and_invalid_files(tmp_path):
    with pytest.raises(UserInputError, match="cannot read tokenizer file"):
        load_tokenizer(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(UserInputError, match="not a Hugging Face tokenizer.json"):
        load_tokenizer(tmp_path / "bad.json")


def test_pad_batch_pads_right_to_the_longest_and_to_min_length():
    batch = pad_batch([[5, 6, 7], [8]], min_length=1)
    assert batch.tolist() == [[5, 6, 7], [8, PAD_ID, PAD_ID]] and batch.dtype == torch.long
    assert pad_batch([[5]], min_length=5).tolist() == [[5, 0, 0, 0, 0]]


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_text_encodes_to_valid_non_padding_ids(word_tokenizer, text):
    ids = encode(word_tokenizer, [text], max_length=32)[0]
    assert 1 <= len(ids) <= 32
    assert all(0 < i < word_tokenizer.get_vocab_size() for i in ids)


def test_huge_texts_are_cut_before_tokenizing_without_changing_the_ids(word_tokenizer):
    review = "a gripping , funny and finally transporting film " * 30
    huge = review + "x" * 1_000_000
    assert encode(word_tokenizer, [huge], max_length=64) == encode(word_tokenizer, [review], max_length=64)


# -- text that is not English --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chinese_reviews():
    from tests.conftest import dataset_dir

    return datasets.load_dataset(str(dataset_dir("chnsenticorp")))


@pytest.mark.parametrize("kind", ["word", "char", "unigram", "bpe", "wordpiece"])
def test_unseen_chinese_sentences_encode_to_known_tokens(chinese_reviews, kind):
    """Chinese has no spaces: a word-level vocabulary of whole sentences would map every unseen one to [UNK]."""
    tokenizer = train_tokenizer(chinese_reviews["train"]["text"], kind=kind, vocab_size=8000)
    seen = set(chinese_reviews["train"]["text"])
    unseen = [text for text in chinese_reviews["test"]["text"][:200] if text not in seen]
    ids = [i for row in encode(tokenizer, unseen, max_length=256) for i in row]
    assert sum(i == UNK_ID for i in ids) / len(ids) < 0.02
    assert sum(len(text) for text in unseen) / len(ids) < 2.5  # about a token per character or two, not per sentence


def test_char_tokens_are_single_characters_without_spaces():
    tokenizer = train_tokenizer(["服务很好 ok!"] * 3, kind="char")
    ids = encode(tokenizer, ["服务 ok"], max_length=16)[0]
    assert [tokenizer.id_to_token(i) for i in ids] == ["服", "务", "o", "k"]


def test_lowercase_can_be_switched_off():
    cased = train_tokenizer(["Apple apple"] * 3, lowercase=False)
    assert encode(cased, ["Apple apple"], 4)[0] != encode(cased, ["apple apple"], 4)[0]
    folded = train_tokenizer(["Apple apple"] * 3)
    assert encode(folded, ["Apple apple"], 4)[0] == encode(folded, ["apple apple"], 4)[0]


def test_a_pretrained_vocabulary_with_other_special_ids_is_remapped(tmp_path):
    """A BERT-style vocabulary ([PAD] 0, [UNK] 100) loads with [UNK] at 1; every word keeps its token."""
    from tokenizers import Tokenizer, models

    from textcnn.tokenizer import normalizer, pre_tokenizer

    words = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "the", "film", "was", "fun"]
    bert_like = Tokenizer(models.WordPiece({word: index for index, word in enumerate(words)}, unk_token="[UNK]"))
    bert_like.normalizer, bert_like.pre_tokenizer = normalizer(), pre_tokenizer()
    bert_like.save(str(tmp_path / "tokenizer.json"))
    tokenizer = load_tokenizer(tmp_path / "tokenizer.json")
    assert tokenizer.token_to_id("[PAD]") == 0 and tokenizer.token_to_id("[UNK]") == UNK_ID
    ids = encode(tokenizer, ["The film was fun, zebra"], max_length=16)[0]
    assert [tokenizer.id_to_token(i) for i in ids] == ["the", "film", "was", "fun", "[UNK]", "[UNK]"]
    assert tokenizer.token_to_id("[unused0]") == 100  # took [UNK]'s old id
