"""Explanations: n-gram contributions add up to the logit, lie inside the text, and find what a
model was built to detect."""

from concurrent.futures import ThreadPoolExecutor

import datasets
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import textcnn
from textcnn.errors import UserInputError
from textcnn.inference.explain import to_html
from textcnn.model import TextCNN, TextCNNConfig
from textcnn.inference.predictor import Predictor
from textcnn.tokenizer import train_tokenizer

# results that depend on the CPU's kernels: CI runs these a second time with ATEN_CPU_CAPABILITY=default
pytestmark = pytest.mark.numerics

SHORT_AND_ODD = ["!", "", "bad", "a gorgeous , witty , seductive movie .", "<b>great</b> & fun"]


@pytest.fixture(scope="module")
def predictor(checkpoint) -> Predictor:
    return textcnn.load(checkpoint)


@pytest.fixture(scope="module")
def texts(sst2_slice) -> list[str]:
    test = datasets.load_dataset(str(sst2_slice))["test"]["text"]
    return test[:60] + SHORT_AND_ODD + [" ".join(test[:8])]  # the last one is cut at max_length


def assert_adds_up(explanation, logit: float) -> None:
    assert explanation.logit == pytest.approx(logit, abs=1e-5)
    total = explanation.bias + sum(g.contribution for g in explanation.ngrams)
    assert total == pytest.approx(explanation.logit, abs=1e-4)


def test_contributions_and_bias_add_up_to_the_predicted_logit(predictor, texts):
    logits = predictor.logits(texts)
    for i, explanation in enumerate(predictor.explain(texts)):
        predicted = int(logits[i].argmax())
        assert explanation.label == predictor.label_names[predicted]
        assert_adds_up(explanation, float(logits[i, predicted]))
        assert explanation.ngrams == sorted(explanation.ngrams, key=lambda g: -g.contribution)


def test_any_class_can_be_explained(predictor, texts):
    logits = predictor.logits(texts)
    for explanation in predictor.explain(texts, label="negative"):
        assert explanation.label == "negative"
    for i, explanation in enumerate(predictor.explain(texts, label="positive")):
        assert_adds_up(explanation, float(logits[i, 1]))
    with pytest.raises(UserInputError, match="label 'neutral' is not one of the model's labels"):
        predictor.explain(["fine"], label="neutral")


def test_ngrams_are_real_tokens_inside_the_receptive_field(predictor, texts):
    # Two layers of width 3 with a pool of 2 between: a last-layer step sees at most 8 tokens.
    for text, explanation in zip(texts, predictor.explain(texts)):
        assert not explanation.exact and explanation.to_dict()["attribution"] == "receptive_field"
        assert len(explanation.tokens) <= predictor.max_length
        for ngram in explanation.ngrams:
            assert 0 <= ngram.start < ngram.end <= len(explanation.tokens)
            assert ngram.end - ngram.start <= 8
            assert ngram.text == text[explanation.offsets[ngram.start][0] : explanation.offsets[ngram.end - 1][1]]
    single = predictor.explain(["!"])[0]  # one token, padded to the widest kernel: only that token
    assert single.tokens == ["!"] and all((g.start, g.end) == (0, 1) for g in single.ngrams)


def test_explanations_do_not_depend_on_batching(predictor, texts):
    together = predictor.explain(texts, batch_size=16)
    for text, batched in zip(texts[::7], together[::7]):
        alone = predictor.explain([text])[0]
        assert [(g.start, g.end) for g in alone.ngrams] == [(g.start, g.end) for g in batched.ngrams]
        assert [g.contribution for g in alone.ngrams] == pytest.approx([g.contribution for g in batched.ngrams], abs=1e-5)


def test_explanations_are_the_same_from_many_threads(predictor, texts):
    expected = [e.to_dict(top_n=None) for e in predictor.explain(texts)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        runs = list(pool.map(lambda _: [e.to_dict(top_n=None) for e in predictor.explain(texts, batch_size=8)], range(6)))
    for run in runs:
        for got, want in zip(run, expected):
            assert [g["ngram"] for g in got["ngrams"]] == [g["ngram"] for g in want["ngrams"]]
            assert got["logit"] == pytest.approx(want["logit"], abs=1e-5)


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=st.one_of(st.characters(exclude_categories=()), st.sampled_from("\x00\ud800\udfff")), max_size=300))
def test_any_text_is_explained_exactly(predictor, text):
    explanation = predictor.explain([text])[0]
    assert_adds_up(explanation, float(predictor.logits([text])[0].max()))
    assert all(0 <= g.start < g.end <= len(explanation.tokens) for g in explanation.ngrams)


def test_one_layer_attribution_is_exact_and_finds_the_trigger_word():
    """A hand-built model whose only feature fires on "awful": the explanation must name that window."""
    text = "the film is awful today"
    tokenizer = train_tokenizer([text])
    model = TextCNN(tokenizer.get_vocab_size(), 2, TextCNNConfig(embed_dim=4, conv_channels=[1], kernel_sizes=[[2]],
                                                                 ngram_order=0))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.embedding.weight[tokenizer.token_to_id("awful"), 0] = 1.0
        model.layers[0].convs[0].weight[0, 0, :] = 1.0  # width 2: covers tokens t and t+1
        model.classifier.weight[1, 0] = 2.0
        model.classifier.bias[:] = torch.tensor([0.1, -0.3])
    explanation = Predictor(model, tokenizer, ["negative", "positive"]).explain([text])[0]
    assert explanation.exact and explanation.label == "positive"
    assert [(g.text, g.start, g.end) for g in explanation.ngrams] == [("is awful", 2, 4)]  # first of two maxima
    assert explanation.ngrams[0].contribution == pytest.approx(2.0)
    assert (explanation.bias, explanation.logit) == pytest.approx((-0.3, 1.7))
    assert explanation.token_scores() == pytest.approx([0.0, 0.0, 1.0, 1.0, 0.0])


def test_parallel_widths_give_exact_ngrams_no_wider_than_their_kernel(predictor, texts):
    torch.manual_seed(0)
    kim = TextCNN(predictor.tokenizer.get_vocab_size(), 2, TextCNNConfig(embed_dim=16, conv_channels=[8],
                                                                        kernel_sizes=[[2, 3, 5]])).eval()
    explainer = Predictor(kim, predictor.tokenizer, predictor.label_names, predictor.max_length)
    logits = explainer.logits(texts)
    for i, explanation in enumerate(explainer.explain(texts)):
        assert explanation.exact and explanation.to_dict()["attribution"] == "exact"
        assert_adds_up(explanation, float(logits[i].max()))
        assert all(1 <= g.end - g.start <= 5 for g in explanation.ngrams)


def test_ngram_bag_shares_add_up_exactly_and_name_their_ngrams(predictor, texts):
    torch.manual_seed(0)
    config = TextCNNConfig(embed_dim=16, conv_channels=[8], kernel_sizes=[[2, 3]], ngram_order=2, ngram_dim=4)
    model = TextCNN(predictor.tokenizer.get_vocab_size(), 2, config).eval()
    with torch.no_grad():
        model.ngrams.embedding.weight.normal_()  # shares large enough to matter
    explainer = Predictor(model, predictor.tokenizer, predictor.label_names, predictor.max_length)
    logits = explainer.logits(texts)
    for i, explanation in enumerate(explainer.explain(texts)):
        assert explanation.exact
        assert_adds_up(explanation, float(logits[i].max()))
        assert all(1 <= g.end - g.start <= 3 for g in explanation.ngrams)


def test_a_bag_only_feature_names_the_bigram_that_carries_it():
    text = "the film is not good"
    tokenizer = train_tokenizer([text])
    config = TextCNNConfig(embed_dim=4, conv_channels=[1], kernel_sizes=[[2]], ngram_order=2, ngram_dim=1)
    model = TextCNN(tokenizer.get_vocab_size(), 2, config).eval()
    ids = torch.tensor([[tokenizer.token_to_id(w) for w in text.split()]])
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        not_good = model.ngrams.ngram_ids(ids)[0, 5 + 3]  # the bigram at position 3
        model.ngrams.embedding.weight[not_good, 0] = 9.0  # 9 rows are averaged: 5 unigrams, 4 bigrams
        model.classifier.weight[0, 1] = 1.0  # the bag's one feature, beside the one conv channel
    explanation = Predictor(model, tokenizer, ["negative", "positive"]).explain([text])[0]
    assert explanation.label == "negative"
    assert [(g.text, g.start, g.end) for g in explanation.ngrams][0] == ("not good", 3, 5)
    assert explanation.ngrams[0].contribution == pytest.approx(1.0)
    assert explanation.logit == pytest.approx(1.0)


def test_to_dict_keeps_the_sum_with_the_rest(predictor, texts):
    for explanation in predictor.explain(texts[:20]):
        shown = explanation.to_dict(top_n=1)
        assert len(shown["ngrams"]) == min(1, len(explanation.ngrams))
        total = shown["bias"] + shown["rest"] + sum(g["contribution"] for g in shown["ngrams"])
        assert total == pytest.approx(shown["logit"], abs=1e-4)


def test_html_shades_every_token_and_escapes_markup(predictor):
    texts = ["a <script>alert(1)</script> film", "a gorgeous , witty film"]
    explanations = predictor.explain(texts)
    page = to_html(explanations)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("<section>") == 2
    assert page.count("<span ") == sum(len(e.tokens) for e in explanations)
    assert "rgba(0, 150, 60" in page or "rgba(210, 40, 40" in page
