"""Explanations: which n-grams won the max-pooling, and how much each added to a class's logit.

After the global max-pool the head is linear, ``logit_c = b_c + Σ_j W[c, j] · pooled_j``, and each
``pooled_j`` is feature map ``j`` at one time step: its argmax over the text's real (unpadded)
positions, the same masked pooling the model uses. So each term ``W[c, j] · pooled_j`` belongs to the
tokens that produced that time step; terms that share a window are summed into one n-gram, and the
n-grams' contributions plus the bias add up to the logit.

* One conv layer (Kim 2014): a time step of a width-k filter saw exactly its k tokens (fewer at the
  text's edges, where it saw padding): the attribution is exact (``attribution: "exact"``).
* Stacked layers: a time step depends on its whole receptive field through the lower convolutions
  and pools; its contribution goes to that span of tokens (``attribution: "receptive_field"``). The
  sum is still exact; which tokens inside a span mattered most is not resolved.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import torch
from tokenizers import Tokenizer

from textcnn.errors import UserInputError
from textcnn.model import PAD_ID, TextCNN
from textcnn.tokenizer import encode, pad_batch


@dataclass
class NGram:
    start: int  # first token
    end: int  # one past the last token
    text: str  # as written in the input
    contribution: float  # added to the explained class's logit


@dataclass
class Explanation:
    """How one text's logit for ``label`` is made: ``bias + Σ ngram.contribution``."""

    text: str
    label: str
    logit: float
    bias: float
    exact: bool
    tokens: list[str]
    offsets: list[tuple[int, int]]  # character span of each token in ``text``
    ngrams: list[NGram]  # every window that won a max-pool, largest contribution first

    def token_scores(self) -> list[float]:
        """Each n-gram's contribution spread evenly over its tokens (for highlighting)."""
        scores = [0.0] * len(self.tokens)
        for ngram in self.ngrams:
            for position in range(ngram.start, ngram.end):
                scores[position] += ngram.contribution / (ngram.end - ngram.start)
        return scores

    def to_dict(self, top_n: Optional[int] = 5) -> dict[str, Any]:
        """JSON-ready; ``rest`` sums the n-grams beyond ``top_n`` so ``bias + Σ + rest = logit``."""
        shown = self.ngrams if top_n is None else self.ngrams[:top_n]
        return {
            "label": self.label,
            "logit": self.logit,
            "bias": self.bias,
            "attribution": "exact" if self.exact else "receptive_field",
            "ngrams": [
                {"ngram": g.text, "start": g.start, "end": g.end, "contribution": g.contribution} for g in shown
            ],
            "rest": sum((g.contribution for g in self.ngrams[len(shown):]), 0.0),
        }


class Explainer:
    """Explains a :class:`TextCNN`'s logits; stateless, so safe to share between threads.

    It reads the last layer's masked feature maps from :meth:`TextCNN.feature_maps`, the same
    computation the model's ``forward`` pools, so explanations cannot drift from predictions.
    """

    def __init__(self, model: TextCNN, tokenizer: Tokenizer, label_names: Sequence[str], max_length: int):
        if model.config.architecture != "textcnn":
            raise UserInputError(
                f"explanations trace the textcnn stack's receptive fields; this checkpoint is "
                f"architecture {model.config.architecture!r}, so predict without --explain"
            )
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.label_names = list(label_names)
        self.max_length = max_length
        self.exact = len(self.model.layers) == 1
        # Every channel of the last layer comes from one width; lower layers count with their widest.
        last = self.model.layers[-1]
        self._left = torch.tensor([(c.kernel_size[0] - 1) // 2 for c in last.convs for _ in range(c.out_channels)])
        self._right = torch.tensor([c.kernel_size[0] // 2 for c in last.convs for _ in range(c.out_channels)])

    def _token_spans(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Last-layer time steps (C,) → first and last input token each one saw (C,), (C,)."""
        first, last = positions - self._left, positions + self._right
        pool = self.model.config.pool_size
        for layer in reversed(self.model.layers[:-1]):
            widths = [conv.kernel_size[0] for conv in layer.convs]
            first = first * pool - max((k - 1) // 2 for k in widths)
            last = last * pool + pool - 1 + max(k // 2 for k in widths)
        return first, last

    @torch.inference_mode()
    def explain(self, texts: Sequence[str], label: Optional[str] = None, batch_size: int = 256) -> list[Explanation]:
        """One :class:`Explanation` per text, of ``label`` (default: the predicted class)."""
        if label is not None and label not in self.label_names:
            raise UserInputError(f"label {label!r} is not one of the model's labels {self.label_names}")
        if batch_size < 1:
            raise UserInputError(f"batch_size must be a positive integer, got {batch_size}")
        ids = encode(self.tokenizer, texts, self.max_length)
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)  # for the offsets
        explanations = []
        for start in range(0, len(texts), batch_size):
            rows = range(start, min(start + batch_size, len(texts)))
            input_ids = pad_batch([ids[i] for i in rows], self.model.config.widest_kernel)
            feature_maps, mask = self.model.feature_maps(input_ids)
            features = self.model.pool(feature_maps, input_ids)  # as in TextCNN.forward
            logits = self.model.classifier(features)
            bag_rows = self.model.ngrams.ngram_ids(input_ids) if self.model.ngrams is not None else None
            for row, i in enumerate(rows):
                target = self.label_names.index(label) if label is not None else int(logits[row].argmax())
                offsets = [tuple(o) for o in encodings[i].offsets[: len(ids[i])]] or [(0, 0)]  # [UNK] if empty
                real = int(mask[row].sum())
                explanations.append(
                    self._explain_one(texts[i], offsets, feature_maps[row, :, :real], features[row],
                                      None if bag_rows is None else bag_rows[row], float(logits[row, target]), target)
                )
        return explanations

    def _explain_one(
        self,
        text: str,
        offsets: list[tuple[int, int]],
        feature_maps: torch.Tensor,  # (C, L'): real positions only
        features: torch.Tensor,  # (C [+ D],): what the classifier read
        bag_rows: Optional[torch.Tensor],  # (n·L,): the n-gram bag's rows, padding 0
        logit: float,
        target: int,
    ) -> Explanation:
        channels = feature_maps.shape[0]
        pooled, weight = features[:channels], self.model.classifier.weight[target].double()
        positions = feature_maps.argmax(dim=1)  # (C,) first max wins
        first, last = self._token_spans(positions)
        first, last = first.clamp(min=0), last.clamp(max=len(offsets) - 1)
        contributions = weight[:channels] * pooled.double()  # (C,)
        won = pooled > 0  # a feature that is zero everywhere contributes nothing
        totals: dict[tuple[int, int], float] = {}
        for a, b, value in zip(first[won].tolist(), last[won].tolist(), contributions[won].tolist()):
            totals[a, b + 1] = totals.get((a, b + 1), 0.0) + value
        if bag_rows is not None:  # the bag is a mean: each n-gram adds its row's share, exactly
            length = bag_rows.shape[0] // self.model.config.ngram_order
            real = (bag_rows != PAD_ID).nonzero().squeeze(1)
            shares = self.model.ngrams.embedding.weight[bag_rows[real]].double() @ weight[channels:] / max(len(real), 1)
            for index, value in zip(real.tolist(), shares.tolist()):
                a = index % length
                span = (a, min(a + index // length + 1, len(offsets)))
                totals[span] = totals.get(span, 0.0) + value
        ngrams = sorted(
            (NGram(a, b, text[offsets[a][0] : offsets[b - 1][1]], value) for (a, b), value in totals.items()),
            key=lambda g: (-g.contribution, g.start, g.end),
        )
        return Explanation(
            text=text,
            label=self.label_names[target],
            logit=logit,
            bias=float(self.model.classifier.bias[target]),
            exact=self.exact,
            tokens=[text[a:b] or "[UNK]" for a, b in offsets],
            offsets=offsets,
            ngrams=ngrams,
        )


def to_html(explanations: Sequence[Explanation], top_n: int = 5) -> str:
    """A standalone HTML page: each text with its tokens shaded by contribution (green adds to the
    explained class's logit, red takes away), and its top n-grams."""
    exact = all(e.exact for e in explanations)
    return html_head() + "".join(html_section(e, top_n) for e in explanations) + html_tail(exact)


def html_head() -> str:
    """The page up to its first text: what :func:`to_html` writes, in pieces, so that a long page can
    be written to disk a chunk of texts at a time."""
    return (
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>textcnn explanations</title><style>"
        "body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        ".text{font-size:1.2em;line-height:1.8}.meta{color:#555;font-size:.9em}</style></head><body>"
        "<h1>textcnn explanations</h1><p>Green tokens add to the class's logit, red ones take away; hover for "
        "the value.</p>\n"
    )


def html_section(explanation: Explanation, top_n: int = 5) -> str:
    """One text, its tokens shaded, and its top ``top_n`` n-grams."""
    scores = explanation.token_scores()
    scale = max((abs(s) for s in scores), default=0.0) or 1.0
    parts, cursor = [], 0
    for (a, b), token, score in zip(explanation.offsets, explanation.tokens, scores):
        parts.append(html.escape(explanation.text[cursor:a]))
        colour = "0, 150, 60" if score >= 0 else "210, 40, 40"
        parts.append(
            f'<span style="background: rgba({colour}, {abs(score) / scale:.2f})" '
            f'title="{score:+.4f}">{html.escape(token)}</span>'
        )
        cursor = max(cursor, b)
    parts.append(html.escape(explanation.text[cursor:]))
    top = ", ".join(f"{html.escape(g.text)} ({g.contribution:+.3f})" for g in explanation.ngrams[:top_n])
    return (
        f"<section><p class=\"text\">{''.join(parts)}</p>"
        f"<p class=\"meta\">{html.escape(explanation.label)}: logit {explanation.logit:+.3f} = bias "
        f"{explanation.bias:+.3f} + n-grams. Top n-grams: {top}</p></section>\n"
    )


def html_tail(exact: bool) -> str:
    """The page's end: how the contributions were attributed (``exact``: one convolution layer)."""
    attribution = "exact" if exact else "receptive field (stacked layers)"
    return f"<p class=\"meta\">Attribution: {attribution}.</p></body></html>\n"
