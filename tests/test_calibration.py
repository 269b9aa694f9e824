"""Temperature scaling and expected calibration error, on synthetic logits with a known answer and
on a real checkpoint's evaluation."""

import pytest
import torch

import textcnn
from textcnn.inference.calibration import MIN_NLL_GAIN, calibration_report, describe, expected_calibration_error, fit_temperature
from textcnn.training.evaluation import evaluate_checkpoint

# results that depend on the CPU's kernels: CI runs these a second time with ATEN_CPU_CAPABILITY=default
pytestmark = pytest.mark.numerics


def overconfident(true_temperature: float, n: int = 20000, num_classes: int = 3):
    """Labels drawn from softmax(z); the "model" reports z * true_temperature (too confident)."""
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(n, num_classes, generator=generator) * 2
    labels = torch.multinomial(z.softmax(-1), 1, generator=generator).squeeze(1)
    return z * true_temperature, labels


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_a_known_temperature(true_temperature):
    logits, labels = overconfident(true_temperature)
    assert fit_temperature(logits, labels) == pytest.approx(true_temperature, rel=0.05)


def test_temperature_scaling_removes_a_known_miscalibration():
    logits, labels = overconfident(2.5)
    temperature = fit_temperature(logits, labels)
    before, after = expected_calibration_error(logits, labels), expected_calibration_error(logits, labels, temperature)
    assert before > 0.05 and after < 0.02


def test_a_fitted_temperature_is_kept_only_where_it_lowers_the_validation_nll():
    overconfident_validation, overconfident_test = overconfident(2.5), overconfident(2.5)
    report = calibration_report(*overconfident_validation, *overconfident_test, "test")
    assert report["kept"] and report["temperature"] == report["fitted_temperature"] == pytest.approx(2.5, rel=0.05)
    assert report["validation"]["nll_before"] - report["validation"]["nll_after"] >= MIN_NLL_GAIN
    assert report["test"]["ece_after"] < report["test"]["ece_before"]  # the check agrees
    assert "kept: predict with --temperature 2.5" in describe(report)

    calibrated_validation, calibrated_test = overconfident(1.0), overconfident(1.0)
    report = calibration_report(*calibrated_validation, *calibrated_test, "test")
    assert not report["kept"] and report["temperature"] == 1.0 and report["fitted_temperature"] == pytest.approx(1, abs=0.05)
    line = describe(report)
    assert "not kept" in line and "test (the check)" in line and "\n" not in line


def test_expected_calibration_error_of_hand_made_predictions():
    labels = torch.tensor([0, 0, 1, 1])
    sure_and_right = torch.tensor([[10.0, -10.0], [10.0, -10.0], [-10.0, 10.0], [-10.0, 10.0]])
    assert expected_calibration_error(sure_and_right, labels) == pytest.approx(0.0, abs=1e-6)
    # Confidence 0.9 (logit gap ln 9) on every text, right on half of them: ECE = |0.9 - 0.5| = 0.4.
    gap = torch.log(torch.tensor(9.0))
    ninety = torch.tensor([[gap, 0.0], [0.0, gap], [gap, 0.0], [0.0, gap]])
    assert expected_calibration_error(ninety, labels) == pytest.approx(0.4, abs=1e-5)


def test_evaluation_reports_calibration_fitted_on_validation(checkpoint, trained):
    report = trained["calibration"]  # train() ends with evaluate_checkpoint on the test split
    assert report["fitted_on"] == "validation" and report["evaluated_on"] == "test"
    assert report["fitted_temperature"] > 0
    for split in ("validation", "test"):
        assert 0 <= report[split]["ece_after"] <= 1 and 0 <= report[split]["ece_before"] <= 1
    assert report["validation"]["nll_after"] <= report["validation"]["nll_before"] + 1e-6  # T minimises it there
    assert report["temperature"] == (report["fitted_temperature"] if report["kept"] else 1.0)

    on_validation = evaluate_checkpoint(checkpoint, split="validation")["calibration"]
    assert on_validation["fitted_temperature"] == pytest.approx(report["fitted_temperature"], rel=1e-6)
    assert on_validation["validation"] == pytest.approx(report["validation"], rel=1e-6)
    assert "test" not in on_validation

    predictor = textcnn.load(checkpoint, temperature=report["fitted_temperature"])
    probabilities = predictor.predict_proba(["a gorgeous , witty film"])
    logits = predictor.logits(["a gorgeous , witty film"])
    torch.testing.assert_close(probabilities, (logits / report["fitted_temperature"]).softmax(-1))
