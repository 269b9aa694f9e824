// The page of `textcnn serve`: it asks /metadata what the model is, /predict for one text and its
// explanation, /predict-file for a file's predictions. Text from users and from the model is only
// ever set as textContent: a review holding <script> shows as written.
"use strict";

const $ = (id) => document.getElementById(id);
let metadata = null;
let runs = 0;

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function percent(value) {
  return (100 * value).toFixed(1) + "%";
}

function signed(value) {
  return (value >= 0 ? "+" : "") + value.toFixed(3);
}

async function detail(response) {
  try {
    return (await response.json()).detail || response.statusText;
  } catch (error) {
    return response.status + " " + response.statusText;
  }
}

function canExplain() {
  return metadata !== null && metadata.backend === "pytorch" && metadata.network.architecture === "textcnn";
}

function abstaining() {
  const value = $("min-precision").value;
  return value === "" ? {} : { min_precision: Number(value) };
}

function showModel() {
  const card = metadata.card || {};
  const labels = metadata.label_names;
  $("model-line").textContent = labels.length + " classes, " + (metadata.multi_label ? "multi-label" : "single-label")
    + ", " + metadata.backend + " backend";
  const facts = $("card-facts");
  const fact = (name, value) => {
    if (value === null || value === undefined || value === "") return;
    facts.append(element("dt", name), element("dd", String(value)));
  };
  fact("Labels", labels.join(", "));
  fact("Training data", [card.training_data, ...(card.datasets || [])].filter(Boolean).join(", "));
  fact("Epochs trained", card.epochs_trained);
  const time = (value) => value.replace("T", " ").replace("+00:00", " UTC");
  if (card.trained_at) fact("Trained", time(card.trained_at));
  else fact("Model file written", card.saved ? time(card.saved) : null);
  if (metadata.num_parameters) fact("Parameters", metadata.num_parameters.toLocaleString("en"));
  fact("Limits", metadata.limits.max_chars + " characters a text, " + metadata.limits.max_texts + " texts a request");
  const evaluations = card.evaluation || [];
  const body = $("metrics").tBodies[0];
  for (const record of evaluations) {
    for (const [name, value] of Object.entries(record.metrics)) {
      const row = body.insertRow();
      row.append(element("td", record.split + (record.data ? " (" + record.data + ")" : "")),
        element("td", record.num_examples == null ? "" : record.num_examples.toLocaleString("en"), "number"),
        element("td", name), element("td", percent(value), "number"));
    }
  }
  $("metrics").hidden = evaluations.length === 0;
  if (evaluations.length === 0) fact("Metrics", "none recorded with this model");
  showAbstaining();
}

function showAbstaining() {
  const table = metadata.abstaining;
  if (!table) return;  // no risk-coverage table: the model cannot abstain by precision
  const select = $("min-precision");
  for (const [precision, row] of Object.entries(table.min_precision)) {
    if (row === null) continue;
    const option = element("option", percent(Number(precision)) + " (answers " + percent(row.coverage) + " of "
      + table.split + ")");
    option.value = precision;
    select.append(option);
  }
  $("abstain-control").hidden = select.options.length < 2;
}

function showProbabilities(probabilities, chosen) {
  const bars = $("probabilities");
  bars.replaceChildren();
  for (const [name, value] of Object.entries(probabilities)) {
    const row = element("div", undefined, chosen.includes(name) ? "row top" : "row");
    const track = element("div", undefined, "track");
    const fill = element("div", undefined, "fill");
    fill.style.width = percent(value);
    track.append(fill);
    row.append(element("span", name, "name"), track, element("span", percent(value), "value"));
    row.dataset.label = name;
    bars.append(row);
  }
}

// Each n-gram is marked at its first place in the text that no stronger n-gram holds already.
function placedNgrams(text, ngrams) {
  const spans = [];
  const strongestFirst = [...ngrams].sort((a, b) => Math.abs(b.contribution) - Math.abs(a.contribution));
  for (const ngram of strongestFirst) {
    for (let at = text.indexOf(ngram.ngram); ngram.ngram && at !== -1; at = text.indexOf(ngram.ngram, at + 1)) {
      const end = at + ngram.ngram.length;
      if (!spans.some((span) => at < span.end && span.start < end)) {
        spans.push({ start: at, end, ngram });
        break;
      }
    }
  }
  return spans.sort((a, b) => a.start - b.start);
}

function showExplanation(text, explanation) {
  const target = $("highlighted");
  const legend = $("legend").tBodies[0];
  target.replaceChildren();
  legend.replaceChildren();
  if (!explanation) {
    target.textContent = text;
    $("explanation-note").textContent = "This model gives no explanations (an ONNX export or an ensemble).";
    return;
  }
  const strongest = Math.max(...explanation.ngrams.map((g) => Math.abs(g.contribution)), 1e-12);
  let cursor = 0;
  for (const span of placedNgrams(text, explanation.ngrams)) {
    target.append(document.createTextNode(text.slice(cursor, span.start)));
    const { contribution, ngram } = span.ngram;
    const strength = Math.max(1, Math.ceil(5 * Math.abs(contribution) / strongest));
    const mark = element("mark", text.slice(span.start, span.end),
      (contribution >= 0 ? "plus" : "minus") + " s" + strength);
    mark.title = ngram + ": " + signed(contribution) + " to the logit of " + explanation.label;
    mark.dataset.contribution = String(contribution);
    target.append(mark);
    cursor = span.end;
  }
  target.append(document.createTextNode(text.slice(cursor)));
  for (const ngram of explanation.ngrams) {
    const row = legend.insertRow();
    row.append(element("td", ngram.ngram), element("td", signed(ngram.contribution), "number"));
  }
  const how = explanation.attribution === "exact" ? "exact n-grams" : "receptive fields of stacked layers";
  $("explanation-note").textContent = "Green adds to the logit of " + explanation.label + ", red takes away ("
    + how + "): logit " + signed(explanation.logit) + " = bias " + signed(explanation.bias)
    + " + the n-grams listed + the rest (" + signed(explanation.rest) + ").";
}

async function predict() {
  const started = performance.now();
  const text = $("text").value;
  const button = $("predict");
  button.disabled = true;
  $("status").textContent = "Predicting…";
  $("status").classList.remove("error");
  try {
    const response = await fetch("/predict", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ texts: [text], explain: canExplain(), top_ngrams: 8, ...abstaining() }),
    });
    if (!response.ok) throw new Error(await detail(response));
    const prediction = (await response.json()).predictions[0];
    const chosen = metadata.multi_label ? prediction.labels : [prediction.label].filter((label) => label !== null);
    $("label").textContent = prediction.abstained ? "none" : metadata.multi_label ? chosen.join(", ") || "none" : prediction.label;
    $("abstained").hidden = !prediction.abstained;
    showProbabilities(prediction.probabilities, chosen);
    showExplanation(text, prediction.explanation);
    $("result").hidden = false;
    $("status").textContent = "";
    runs += 1;
    $("result").dataset.ms = (performance.now() - started).toFixed(1);
    $("result").dataset.run = String(runs);
  } catch (error) {
    $("status").textContent = error.message;
    $("status").classList.add("error");
  } finally {
    button.disabled = false;
  }
}

async function predictFile() {
  const file = $("file").files[0];
  const status = $("file-status");
  status.classList.remove("error");
  if (!file) {
    status.textContent = "Choose a file first.";
    return;
  }
  status.textContent = "Predicting " + file.name + "…";
  try {
    const query = new URLSearchParams({ filename: file.name, ...abstaining() });
    const response = await fetch("/predict-file?" + query, {
      method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: file,
    });
    if (!response.ok) throw new Error(await detail(response));
    const disposition = response.headers.get("Content-Disposition") || "";
    const named = /filename="([^"]+)"/.exec(disposition);
    const link = element("a");
    link.href = URL.createObjectURL(await response.blob());
    link.download = named ? named[1] : "predictions.csv";
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
    status.textContent = "Saved " + link.download + ".";
  } catch (error) {
    status.textContent = error.message;
    status.classList.add("error");
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  $("predict").addEventListener("click", predict);
  $("predict-file").addEventListener("click", predictFile);
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      predict();
    }
  });
  try {
    const response = await fetch("/metadata");
    if (!response.ok) throw new Error(await detail(response));
    metadata = await response.json();
    showModel();
    $("predict").disabled = $("predict-file").disabled = false;
    document.body.dataset.ready = "true";
  } catch (error) {
    $("model-line").textContent = "The model's description did not load: " + error.message;
    $("model-line").classList.add("error");
  }
});
