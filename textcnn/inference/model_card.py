"""The model card (``README.md``) of a model directory, written from its ``config.json`` alone.

A Hugging Face metadata header (``library_name``, ``pipeline_tag``, languages, datasets, metrics and a
``model-index`` of the recorded results, written by huggingface_hub's ``ModelCardData``) over sections
on the model, its training data, metrics, intended use, limitations and how to load it. Every figure
comes from the config: the network's shapes, the checkpoint's recorded validation score, or a
``textcnn evaluate`` report given at export.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from textcnn.errors import UserInputError

SPLITS = ("train", "validation", "test")
# the metrics a report holds, by kind of model; names as `textcnn evaluate` prints them
SINGLE_LABEL_METRICS = ("accuracy", "macro_f1")
MULTI_LABEL_METRICS = ("micro_f1", "macro_f1", "exact_match")
# the Hub's metric ids (huggingface.co/metrics) and readable names
METRIC_TYPES = {"accuracy": ("accuracy", "Accuracy"), "macro_f1": ("f1", "Macro F1"),
                "micro_f1": ("f1", "Micro F1"), "exact_match": ("exact_match", "Exact match")}
SOURCES = {"checkpoint": "recorded in the checkpoint when training saved it (this split chose the checkpoint)",
           "evaluate": "`textcnn evaluate`"}


def evaluation_record(report: Any, label_names: list[str], multi_label: bool, source: str = "--metrics"
                      ) -> dict[str, Any]:
    """The figures of a ``textcnn evaluate`` report worth a card, checked to be this model's."""
    if not isinstance(report, dict) or report.get("split") not in SPLITS or not isinstance(report.get("per_class"), dict):
        raise UserInputError(f"{source} is not a report printed by `textcnn evaluate` (no split or per_class); "
                             "save what `textcnn evaluate --checkpoint …` prints and pass that file")
    if sorted(report["per_class"]) != sorted(label_names):
        raise UserInputError(f"{source} scores the classes {sorted(report['per_class'])}, this model has "
                             f"{sorted(label_names)}; pass the evaluation of this model")
    names = MULTI_LABEL_METRICS if multi_label else SINGLE_LABEL_METRICS
    metrics = {name: report.get(name) for name in names}
    bad = [name for name, value in metrics.items()
           if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1]
    if bad:
        kind = "multi-label" if multi_label else "single-label"
        raise UserInputError(f"{source} has no {bad[0]} for this {kind} model; pass the evaluation of this model")
    data = report.get("data_path")
    count = report.get("num_examples")
    return {"split": report["split"], "source": "evaluate",
            "data": Path(data).name if isinstance(data, str) and Path(data).is_absolute() else data,
            "num_examples": count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None,
            "metrics": {name: float(value) for name, value in metrics.items()}}


def render_card(config: dict[str, Any], repo_id: Optional[str] = None) -> str:
    """The whole ``README.md`` for a checked ``config.json``."""
    dataset = _dataset_name(config)
    title = repo_id.split("/")[-1] if repo_id else f"TextCNN {Path(dataset).name} classifier" if dataset \
        else "TextCNN classifier"
    return "\n".join([_header(config, title), f"# {title}", "", _summary(config), "", *_model(config),
                      *_training_data(config), *_metrics(config), *_intended_use(config), *_limitations(config),
                      *_how_to_load(config, repo_id)])


def _header(config: dict[str, Any], title: str) -> str:
    """The Hub's metadata header, written by huggingface_hub's ``ModelCardData`` (the ``model-index``
    from ``EvalResult``s), between its ``---`` lines."""
    from huggingface_hub import EvalResult, ModelCardData

    evaluations = config.get("evaluation", [])
    results = []
    for record in evaluations:
        name, kind = _evaluated_dataset(config, record)
        for metric, value in record["metrics"].items():
            metric_type, readable = METRIC_TYPES.get(metric, (metric, metric))
            results.append(EvalResult(task_type="text-classification", task_name="Text Classification",
                                      dataset_type=kind, dataset_name=name, dataset_split=record["split"],
                                      metric_type=metric_type, metric_value=round(value, 4), metric_name=readable))
    metric_ids = sorted({METRIC_TYPES.get(name, (name, name))[0] for e in evaluations for name in e["metrics"]})
    data = ModelCardData(library_name="textcnn", pipeline_tag="text-classification",
                         language=list(config.get("language") or []) or None,
                         datasets=list(config.get("datasets") or []) or None, metrics=metric_ids or None,
                         tags=["text-classification", "textcnn", "cnn"], model_name=title if results else None,
                         eval_results=results or None)
    return f"---\n{data.to_yaml()}\n---\n"


def _evaluated_dataset(config: dict[str, Any], record: dict[str, Any]) -> tuple[str, str]:
    """The model-index name and type of the data an evaluation scored: the training data's Hub id when
    it scored the training data (or did not say), else the name of what it scored."""
    data = config.get("data", {})
    trained_on = data.get("train_file") or data.get("path")
    if record.get("data") in (None, trained_on) and config.get("datasets"):
        return config["datasets"][0], config["datasets"][0]
    name = Path(str(record.get("data") or trained_on or "unknown")).name
    return name, name


def _task(config: dict[str, Any]) -> str:
    return "multi-label" if config["multi_label"] else "single-label"


def _summary(config: dict[str, Any]) -> str:
    classes = ", ".join(f"`{name}`" for name in config["label_names"])
    trained = f", trained on {_dataset_name(config)}" if _dataset_name(config) else ""
    return (f"A convolutional text classifier (TextCNN) made with textcnn: "
            f"{_task(config)}, {config['num_classes']} classes ({classes}){trained}.")


def _model(config: dict[str, Any]) -> list[str]:
    network, parameters = config["network"], config.get("num_parameters")
    lines = ["## Model", "", f"- Architecture: {architecture_text(network, config['num_classes'])}."]
    if isinstance(parameters, int):
        lines.append(f"- Parameters: {parameters:,} ({parameters * 4 / 1e6:.1f} MB of float32 weights in "
                     "`model.safetensors`).")
    lines += [f"- Vocabulary: {config['vocab_size']:,} tokens (`tokenizer.json`, Hugging Face tokenizers); "
              f"texts are read up to {config['max_length']:,} tokens and padded to at least {config['min_length']}.",
              f"- Output: {_output_text(config)}",
              f"- Format: textcnn model directory version {config['format_version']}"
              + (f", written by textcnn {config['textcnn_version']}" if config.get("textcnn_version") else "") + ".", ""]
    return lines


def architecture_text(network: dict[str, Any], num_classes: int) -> str:
    """The network in one line, in the order data flows through it."""
    mode = network.get("embedding_mode", "non-static")
    region = network.get("architecture") == "region"
    parts = ["one-hot tokens"] if region else [f"{network['embed_dim']}-dimensional token embeddings ({mode})"]
    for index, (channels, widths) in enumerate(zip(network["conv_channels"], network["kernel_sizes"])):
        widths = [widths] if isinstance(widths, int) else widths
        parallel = f"widths {', '.join(map(str, widths))} in parallel" if len(widths) > 1 else f"width {widths[0]}"
        kind = "region embedding (Conv1d over one-hot tokens)" if region and index == 0 else "Conv1d"
        tv = (f" (plus the {network['tv_channels']} maps of frozen width-{network['tv_width']} tv-embeddings "
              "learnt from unlabelled text)") if index == 0 and network.get("tv_channels") else ""
        parts.append(f"{kind} {parallel}, {channels} maps each{tv}, ReLU")
        if index < len(network["conv_channels"]) - 1 and network.get("architecture") != "dpcnn":
            parts.append(f"max-pool /{network['pool_size']}")
    if network.get("architecture") == "dpcnn":
        parts.append(f"{network['dpcnn_blocks'] + 1} DPCNN residual blocks")
    parts.append("global max-pool over time (padding masked)")
    if network.get("ngram_order", 0):
        parts.append(f"beside it a bag of 1–{network['ngram_order']}-grams ({network['ngram_buckets']:,} hashed "
                     f"buckets, {network['ngram_dim']} dimensions, averaged)")
    parts.append(f"dropout {network['dropout']}, linear layer to {num_classes} logits")
    return " → ".join(parts)


def _output_text(config: dict[str, Any]) -> str:
    if config["multi_label"]:
        thresholds = ", ".join(f"{name} {t:.2f}" for name, t in zip(config["label_names"], config["thresholds"]))
        return (f"one sigmoid probability per class; a class is predicted when it reaches its threshold, tuned on "
                f"validation ({thresholds}).")
    scaled = f" with temperature {config['temperature']:g}" if config["temperature"] != 1 else ""
    return f"softmax probabilities over the classes{scaled}; the label is the most probable class."


def _dataset_name(config: dict[str, Any]) -> Optional[str]:
    if config.get("datasets"):
        return config["datasets"][0]
    data = config.get("data", {})
    for key in ("train_file", "path"):
        if isinstance(data.get(key), str):
            return data[key]
    return None


def _training_data(config: dict[str, Any]) -> list[str]:
    data = config.get("data", {})
    lines = ["## Training data", ""]
    if not data and not config.get("datasets"):
        return lines + ["Not recorded with this model.", ""]
    for dataset in config.get("datasets", []):
        lines.append(f"- Hub dataset: [{dataset}](https://huggingface.co/datasets/{dataset})")
    source = data.get("train_file") or data.get("path")
    if source:
        lines.append(f"- Trained from: `{source}`" + (f" (split `{data['train_split']}`)" if not data.get("train_file")
                                                       and data.get("train_split") else ""))
    columns = [f"text column `{data['text_column']}`" if data.get("text_column") else "",
               f"label column `{data['label_column']}`" if data.get("label_column") else ""]
    if any(columns):
        lines.append(f"- Columns: {', '.join(c for c in columns if c)}")
    if data.get("tokenizer_kind"):
        lines.append(f"- Tokenizer: {data['tokenizer_kind']}-level, lowercased: "
                     f"{'yes' if data.get('lowercase', True) else 'no'}")
    if data.get("pretrained_vectors"):
        lines.append(f"- Embeddings initialised from: `{data['pretrained_vectors']}`")
    if config.get("epochs_trained") is not None:
        lines.append(f"- Epochs trained, up to this checkpoint: {config['epochs_trained']}")
    if config.get("trained_at"):
        lines.append(f"- Trained: {config['trained_at']}")
    return lines + [""]


def _metrics(config: dict[str, Any]) -> list[str]:
    evaluations = config.get("evaluation", [])
    lines = ["## Metrics", ""]
    if not evaluations:
        return lines + ["No evaluation was recorded with this model. Score it with `textcnn evaluate` and export "
                        "again with `--metrics evaluate.json` to add one here.", ""]
    names = [name for name in (*SINGLE_LABEL_METRICS, *MULTI_LABEL_METRICS)
             if any(name in e["metrics"] for e in evaluations)]
    names = list(dict.fromkeys(names))
    lines += ["| split | examples | " + " | ".join(METRIC_TYPES[n][1] for n in names) + " | source |",
              "|---|---|" + "---|" * len(names) + "---|"]
    for record in evaluations:
        values = [f"{100 * record['metrics'][n]:.1f}%" if n in record["metrics"] else "" for n in names]
        count = f"{record['num_examples']:,}" if record.get("num_examples") is not None else ""
        where = f" on `{record['data']}`" if record.get("data") else ""
        lines.append(f"| {record['split']}{where} | {count} | " + " | ".join(values)
                     + f" | {SOURCES.get(record['source'], record['source'])} |")
    return lines + [""]


def _intended_use(config: dict[str, Any]) -> list[str]:
    language = f" (language: {', '.join(config['language'])})" if config.get("language") else ""
    what = "the set of these classes" if config["multi_label"] else "one of these classes"
    return ["## Intended use", "",
            f"Assigning {what} to short texts{language} like those it was trained on: batch labelling, "
            "routing and filtering, a fast baseline beside larger models, CPU-only or low-latency serving "
            "(`textcnn serve`). Check it on your own labelled data before relying on it.", ""]


def _limitations(config: dict[str, Any]) -> list[str]:
    lines = ["## Limitations", "",
             f"- Only the first {config['max_length']:,} tokens of a text are read; the rest is ignored.",
             f"- Words outside its {config['vocab_size']:,}-token vocabulary are read as `[UNK]`: text in other "
             "languages, domains or spellings than the training data's is classified poorly, without warning.",
             "- A TextCNN sees n-gram windows, not whole sentences: negation, sarcasm and comparisons across a "
             "text are often missed.",
             "- It learned whatever biases its training data holds; the figures above come from one split of one "
             "dataset."]
    if not config["multi_label"] and config["temperature"] == 1:
        lines.append("- Its probabilities are not calibrated (temperature 1): `textcnn evaluate` fits a "
                     "temperature on validation, pass it as `temperature=`.")
    return lines + [""]


def _how_to_load(config: dict[str, Any], repo_id: Optional[str]) -> list[str]:
    where = repo_id or "path/to/this/directory"
    field = "labels" if config["multi_label"] else "label"
    return ["## How to load", "",
            "With textcnn installed:", "",
            "```bash",
            f"textcnn predict --checkpoint {where} \"text to classify\"",
            "```", "",
            "```python",
            "import textcnn",
            "",
            f"predictor = textcnn.load({json.dumps(where)})  # a Hub id or a local directory; no pickle is read",
            f"predictor.predict([\"text to classify\"])  # [{{'{field}': …, 'probabilities': {{…}}}}]",
            "```", ""]


def card_summary(provenance: dict[str, Any], source: Optional[str]) -> dict[str, Any]:
    """The card's facts a page shows beside a prediction: the training data, the recorded evaluations,
    when the checkpoint was trained and when the model file was written (what stands for the training
    time of a model saved before it was recorded)."""
    data = provenance.get("data", {})
    path = Path(source) if source else None
    files = [] if path is None else sorted(path.iterdir()) if path.is_dir() else [path] if path.is_file() else []
    written = max((file.stat().st_mtime for file in files if file.is_file()), default=None)
    return {
        "training_data": _dataset_name({**provenance, "data": data}),
        "datasets": list(provenance.get("datasets") or []),
        "epochs_trained": provenance.get("epochs_trained"),
        "trained_at": provenance.get("trained_at"),
        "evaluation": list(provenance.get("evaluation", [])),
        "saved": None if written is None else datetime.fromtimestamp(written, timezone.utc).isoformat(timespec="seconds"),
    }
