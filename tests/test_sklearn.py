"""textcnn.sklearn.TextCNNClassifier is a scikit-learn estimator: checked with scikit-learn's own
utilities (clone, get/set_params, Pipeline, GridSearchCV, cross_val_predict, cross_validate, joblib)
on a slice of SST-2."""

import copy
import pickle

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import datasets
from textcnn.sklearn import TextCNNClassifier
from tests.conftest import dataset_dir

# GloVe-initialised embeddings (the recipe's) under a small network: a few seconds per fit
SMALL = {"model.network.conv_channels": [32, 32], "data.max_length": 48,
         "data.batch_size": 64, "model.network.ngram_dim": 16}  # not the few-labels schedule: 4 times the steps
NAMES = np.array(["negative", "positive"])


@pytest.fixture(scope="module")
def sst2():
    splits = datasets.load_dataset(str(dataset_dir("sst2")))
    train, test = splits["train"].shuffle(seed=0).select(range(800)), splits["test"].select(range(300))
    return (np.array(train["text"], dtype=object), NAMES[train["label"]],
            np.array(test["text"], dtype=object), NAMES[test["label"]])


@pytest.fixture(scope="module")
def fitted(sst2):
    texts, labels, _, _ = sst2
    return TextCNNClassifier(max_epochs=3, overrides=SMALL).fit(texts, labels)


def test_fit_predict_and_score_speak_numpy_in_the_labels_given(fitted, sst2):
    _, _, test_texts, test_labels = sst2
    assert list(fitted.classes_) == ["negative", "positive"]
    predicted = fitted.predict(test_texts)
    assert isinstance(predicted, np.ndarray) and predicted.shape == (300,) and set(predicted) <= set(NAMES)
    probabilities = fitted.predict_proba(test_texts)
    assert probabilities.dtype == np.float64 and probabilities.shape == (300, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert (fitted.classes_[probabilities.argmax(axis=1)] == predicted).all()
    assert fitted.score(test_texts, test_labels) > 0.62  # well above the majority class (~0.5)
    assert "validation" in fitted.metrics_


def test_integer_labels_come_back_as_integers_in_sorted_class_order(sst2):
    texts, labels, test_texts, _ = sst2
    ids = np.where(labels == "positive", 7, 3)  # not 0..k-1, and the larger id first in y
    model = TextCNNClassifier(max_epochs=1, overrides=SMALL).fit(list(texts[:300]), ids[:300])
    assert model.classes_.tolist() == [3, 7] and model.predict(test_texts[:20]).dtype == ids.dtype
    assert model.predictor_.label_names == ["3", "7"]  # predict_proba's columns are classes_'s order


def test_an_unfitted_estimator_says_so_and_parameters_round_trip(sst2):
    estimator = TextCNNClassifier(max_epochs=2, overrides=SMALL)
    with pytest.raises(NotFittedError):
        estimator.predict(["a film"])
    assert estimator.get_params()["max_epochs"] == 2 and estimator.get_params()["overrides"] is SMALL
    copy = clone(estimator).set_params(max_epochs=4, class_weight="balanced")
    assert copy.max_epochs == 4 and estimator.max_epochs == 2 and copy.class_weight == "balanced"
    assert "TextCNNClassifier(max_epochs=2" in repr(estimator)


def test_pickle_and_joblib_round_trips_predict_the_same(fitted, sst2, tmp_path):
    _, _, test_texts, _ = sst2
    expected = fitted.predict_proba(test_texts)
    assert np.array_equal(pickle.loads(pickle.dumps(fitted)).predict_proba(test_texts), expected)
    joblib.dump(fitted, tmp_path / "model.joblib")
    assert np.array_equal(joblib.load(tmp_path / "model.joblib").predict_proba(test_texts), expected)


def test_grid_search_over_a_pipeline_picks_by_cross_validation(sst2):
    texts, labels, test_texts, test_labels = sst2
    pipeline = make_pipeline(FunctionTransformer(lambda batch: [text.lower() for text in batch]),
                             TextCNNClassifier(overrides=SMALL))
    search = GridSearchCV(pipeline, {"textcnnclassifier__max_epochs": [1, 3]}, cv=2, error_score="raise")
    search.fit(texts[:600], labels[:600])
    assert search.best_params_["textcnnclassifier__max_epochs"] in (1, 3)
    assert len(search.cv_results_["mean_test_score"]) == 2 and np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.score(test_texts, test_labels) > 0.55


def test_cross_val_predict_gives_out_of_fold_probabilities_and_cross_validate_scores(sst2):
    texts, labels, _, _ = sst2
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    probabilities = cross_val_predict(TextCNNClassifier(max_epochs=2, overrides=SMALL), texts[:600], labels[:600],
                                      cv=folds, method="predict_proba")
    assert probabilities.shape == (600, 2) and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    scores = cross_validate(TextCNNClassifier(max_epochs=2, overrides=SMALL), texts[:400], labels[:400], cv=2,
                            scoring=["accuracy", "f1_macro"])
    assert scores["test_accuracy"].shape == (2,) and (scores["test_f1_macro"] > 0).all()


@pytest.mark.parametrize("X, y, message", [
    ("one text", ["a"], "pass a list of texts"),
    (["a", 5], ["x", "y"], "text 1 of X is int"),
    (["a", "b", "c"], ["x", "x", "x"], "one class"),
    (["a", "b"], ["x"], "one label per text"),
])
def test_bad_input_is_one_clear_error(X, y, message):
    with pytest.raises(ValueError, match=message):
        TextCNNClassifier().fit(X, y)


def test_warm_start_continues_the_fitted_model_and_joins_the_new_classes(fitted, sst2):
    texts, labels, test_texts, _ = sst2
    questions = datasets.load_dataset(str(dataset_dir("trec")), split="train").select(range(300))["text"]
    model = copy.deepcopy(fitted).set_params(warm_start=True)
    old_vocabulary = fitted.predictor_.tokenizer.get_vocab()
    model.fit(np.concatenate([texts[:300], questions]), np.concatenate([labels[:300], ["question"] * 300]))
    assert list(model.classes_) == ["negative", "positive", "question"]
    assert model.predictor_.label_names == ["negative", "positive", "question"]  # columns in classes_ order
    vocabulary = model.predictor_.tokenizer.get_vocab()
    assert len(vocabulary) > len(old_vocabulary) and all(vocabulary[w] == i for w, i in old_vocabulary.items())
    assert model.predict_proba(test_texts[:5]).shape == (5, 3)
    assert list(model.predict(["what is the capital of france ?", "who wrote the odyssey ?"])) == ["question"] * 2
    assert list(fitted.classes_) == ["negative", "positive"]  # the model it started from is unchanged
