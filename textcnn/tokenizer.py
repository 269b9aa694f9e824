"""Train, save and load the Hugging Face tokenizer, and turn texts into padded id tensors.

One ``tokenizer.json`` describes the whole text → ids mapping; it travels inside every checkpoint
so prediction needs nothing else. ``[PAD]`` is id 0 (the model masks it) and ``[UNK]`` id 1.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Literal, Optional

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from textcnn.errors import UserInputError
from textcnn.model import PAD_ID

TokenizerKind = Literal["word", "wordpiece", "bpe", "unigram", "char"]
TOKENIZER_KINDS = ("word", "wordpiece", "bpe", "unigram", "char")
PAD_TOKEN, UNK_TOKEN = "[PAD]", "[UNK]"
SPECIAL_TOKENS = [PAD_TOKEN, UNK_TOKEN]  # order fixes their ids: [PAD]=0, [UNK]=1
UNK_ID = 1
CHARS_PER_TOKEN = 64
# Han ideographs (CJK unified, extension A, compatibility) and Japanese kana: scripts written without
# spaces between words, so each character is a token of its own in every word-level kind.
CJK_CHARACTER = r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"


def train_tokenizer(
    texts: Iterable[str],
    kind: TokenizerKind = "word",
    vocab_size: int = 30000,
    min_frequency: int = 1,
    lowercase: bool = True,
) -> Tokenizer:
    """A tokenizer trained on ``texts`` (the training split only).

    ``word``: whole words and runs of punctuation; ``wordpiece`` / ``bpe`` / ``unigram``: sub-words,
    so unseen words still get pieces; ``char``: every non-space character. Chinese and Japanese
    characters are tokens of their own in every kind (those scripts put no spaces between words)."""
    trainer_args = dict(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS)
    if kind in ("word", "char"):
        model = models.WordLevel(unk_token=UNK_TOKEN)
        trainer = trainers.WordLevelTrainer(min_frequency=min_frequency, **trainer_args)
    elif kind == "wordpiece":
        model = models.WordPiece(unk_token=UNK_TOKEN)
        trainer = trainers.WordPieceTrainer(min_frequency=min_frequency, **trainer_args)
    elif kind == "bpe":
        model = models.BPE(unk_token=UNK_TOKEN)
        trainer = trainers.BpeTrainer(min_frequency=min_frequency, **trainer_args)
    elif kind == "unigram":
        model = models.Unigram()
        trainer = trainers.UnigramTrainer(unk_token=UNK_TOKEN, **trainer_args)
    else:
        raise UserInputError(f"data.tokenizer_kind must be one of {', '.join(TOKENIZER_KINDS)}, got {kind!r}")
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = normalizer(lowercase)
    tokenizer.pre_tokenizer = pre_tokenizer(kind)
    if kind == "wordpiece":
        tokenizer.decoder = decoders.WordPiece()
    tokenizer.train_from_iterator(texts, trainer)
    return _configure(tokenizer)


def normalizer(lowercase: bool = True) -> normalizers.Normalizer:
    """What every trained tokenizer does to a text first: ``<br />`` removed, NFKC, lowercased (by default)."""
    steps = [normalizers.Replace(Regex(r"<br\s*/?>"), " "), normalizers.NFKC()]
    return normalizers.Sequence(steps + [normalizers.Lowercase()] if lowercase else steps)


def pre_tokenizer(kind: TokenizerKind = "word") -> pre_tokenizers.PreTokenizer:
    """Splits a normalised text into the pieces a tokenizer's vocabulary is made of: for ``char``
    every non-space character; otherwise words and runs of punctuation, each CJK character alone."""
    if kind == "char":
        return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(r"\s+"), behavior="removed"),
                                        pre_tokenizers.Split(Regex(r"."), behavior="isolated")])
    return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(CJK_CHARACTER), behavior="isolated"),
                                    pre_tokenizers.Whitespace()])


@functools.lru_cache(maxsize=1)
def _word_splitter() -> tuple[normalizers.Normalizer, pre_tokenizers.PreTokenizer]:
    return normalizer(), pre_tokenizer()


def words(text: Optional[str]) -> list[str]:
    """The words the word tokenizer would look up for ``text`` (lowercased, each CJK character alone),
    for what reads text as words without a trained vocabulary: the baselines, the recipe's checks."""
    normalize, split = _word_splitter()
    return [word for word, _ in split.pre_tokenize_str(normalize.normalize_str(text or ""))]


def tokenizer_from_json(text: str) -> Tokenizer:
    return _configure(Tokenizer.from_str(text))


def with_special_token_ids(text: str) -> str:
    """A pretrained ``tokenizer.json`` whose ``[PAD]`` / ``[UNK]`` have other ids (a BERT vocabulary:
    ``[PAD]`` 0, ``[UNK]`` 100), with those ids swapped to the 0 and 1 textcnn's model expects: the
    tokens that held ids 0 and 1 take the special tokens' old ids, so every text still encodes to the
    same tokens. Other tokenizers are returned unchanged."""
    config = json.loads(text)
    model = config.get("model", {})
    vocab = model.get("vocab")
    if isinstance(vocab, dict):  # WordLevel, WordPiece, BPE: token → id
        ids = dict(vocab)
        by_id = {index: token for token, index in ids.items()}
    elif isinstance(vocab, list):  # Unigram: the id is the position
        by_id = {index: entry[0] for index, entry in enumerate(vocab)}
        ids = {token: index for index, token in by_id.items()}
    else:
        return text
    swaps = {}
    for token, wanted in ((PAD_TOKEN, PAD_ID), (UNK_TOKEN, UNK_ID)):
        current = ids.get(token)
        if current is None or current == wanted:
            continue
        other = by_id.get(wanted)
        ids[token], by_id[wanted] = wanted, token
        if other is not None:
            ids[other], by_id[current] = current, other
            swaps[other] = current
        swaps[token] = wanted
    if not swaps:
        return text
    if isinstance(vocab, dict):
        model["vocab"] = ids
    else:
        scores = {entry[0]: entry[1] for entry in vocab}
        model["vocab"] = [[by_id[index], scores[by_id[index]]] for index in range(len(vocab))]
        if model.get("unk_id") is not None:  # follows its piece to the piece's new id
            model["unk_id"] = ids[vocab[model["unk_id"]][0]]
    for added in config.get("added_tokens") or []:
        if added.get("content") in swaps:
            added["id"] = swaps[added["content"]]
    return json.dumps(config, ensure_ascii=False)


def load_tokenizer(path: str | Path) -> Tokenizer:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        return tokenizer_from_json(with_special_token_ids(text))
    except OSError as error:
        raise UserInputError(f"cannot read tokenizer file {path}: {error.strerror}; check the path") from None
    except Exception as error:  # tokenizers raises plain Exception for bad JSON
        raise UserInputError(
            f"{path} is not a Hugging Face tokenizer.json ({error}); pass a file saved by tokenizers"
        ) from None


def _configure(tokenizer: Tokenizer) -> Tokenizer:
    if tokenizer.token_to_id(PAD_TOKEN) != PAD_ID or tokenizer.token_to_id(UNK_TOKEN) != UNK_ID:
        raise UserInputError(
            f"the tokenizer must map {PAD_TOKEN} to id {PAD_ID} and {UNK_TOKEN} to id {UNK_ID}; "
            "train one with textcnn or add these special tokens first"
        )
    tokenizer.encode_special_tokens = True  # a literal "[PAD]" in user text is text, not padding
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def encode(tokenizer: Tokenizer, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids per text, truncated to ``max_length``; a text with no tokens becomes ``[UNK]``.

    Texts are first cut to ``max_length * CHARS_PER_TOKEN`` characters, so time and memory stay
    bounded for any input (a 1,000,000-character text costs no more than a long review). The ids
    are unchanged unless a token, with the whitespace before it, spans more characters than that.
    """
    limit = max_length * CHARS_PER_TOKEN
    encodings = tokenizer.encode_batch_fast([text[:limit] for text in texts], add_special_tokens=False)
    return [encoding.ids[:max_length] or [UNK_ID] for encoding in encodings]


def pad_batch(sequences: Sequence[Sequence[int]], min_length: int = 1) -> torch.Tensor:
    """Right-pad id lists with ``PAD_ID`` to the longest (at least ``min_length``) → (B, L) int64.

    The one padding helper: training, evaluation and prediction all batch through it.
    """
    length = max(min_length, max(len(ids) for ids in sequences))
    batch = torch.full((len(sequences), length), PAD_ID, dtype=torch.long)
    for row, ids in enumerate(sequences):
        batch[row, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
    return batch


def tokenize_batch(batch: dict, tokenizer: Tokenizer, text_column: str, label_column: str, max_length: int,
                   check_labels: Optional[Callable[[list], None]] = None) -> dict:
    """``{"input_ids": …}`` for a batch of rows (a ``datasets`` batched map); empty texts for nulls."""
    if check_labels is not None:
        check_labels(batch[label_column])
    return {"input_ids": encode(tokenizer, [text or "" for text in batch[text_column]], max_length)}
