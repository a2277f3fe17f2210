"""Accuracy, per-class sensitivity and specificity, and the confusion matrix (scikit-learn)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix


def classification_scores(truth, predicted, classes: tuple[str, ...]) -> dict:
    """Sensitivity of class c: TP / (TP + FN); specificity: TN / (TN + FP), one class against the rest.

    ``mean_sensitivity`` / ``mean_specificity`` are the unweighted means over classes (macro
    averages). The liver-lesion paper (paper 3) does not say how it averages; its sensitivities
    equal its total accuracies, which suggests a class-weighted mean, so these need not match its
    numbers (paper 3's differences say so)."""
    labels = list(range(len(classes)))
    matrix = confusion_matrix(truth, predicted, labels=labels)
    total = matrix.sum()
    per_class = {}
    for c, name in enumerate(classes):
        tp = matrix[c, c]
        fn = matrix[c].sum() - tp
        fp = matrix[:, c].sum() - tp
        tn = total - tp - fn - fp
        per_class[name] = {"sensitivity": float(tp / (tp + fn)) if tp + fn else float("nan"),
                           "specificity": float(tn / (tn + fp)) if tn + fp else float("nan")}
    return {"accuracy": float(accuracy_score(truth, predicted)),
            "mean_sensitivity": float(np.nanmean([v["sensitivity"] for v in per_class.values()])),
            "mean_specificity": float(np.nanmean([v["specificity"] for v in per_class.values()])),
            "per_class": per_class, "confusion_matrix": matrix.tolist(), "classes": list(classes)}
