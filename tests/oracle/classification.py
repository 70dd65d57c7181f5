"""Expected figures of src/monitor/classification.rs's unit tests, from scikit-learn.

Run from the repository root:  target/test-venv/bin/python3 tests/oracle/classification.py
(written with scikit-learn 1.9.1, numpy 2.4.6). Prints the figures pasted into the tests.

The windows are the tests' own: 40 rows, classes and probabilities from
fixed formulas (binary: probabilities with ties; multiclass: 3 classes).
"""
import numpy as np
from sklearn import metrics

def binary():
    t = np.array([int((i * 7 + 3) % 5 < 2) for i in range(40)])
    p1 = np.array([(((i * 13) % 17) + 0.5) / 18.0 for i in range(40)])
    return t, np.c_[1 - p1, p1]

def multi():
    t = np.array([(i * 5 + 1) % 3 for i in range(40)])
    raw = np.array([[((i * 3) % 7) + 1.0, ((i * 5) % 11) + 1.0, ((i * 2) % 5) + 1.0] for i in range(40)])
    return t, raw / raw.sum(axis=1, keepdims=True)

t, p = binary()
pred = (p[:, 1] >= 0.5).astype(int)
print("binary")
print("accuracy", repr(metrics.accuracy_score(t, pred)))
print("log_loss", repr(metrics.log_loss(t, p)))
print("roc_auc", repr(metrics.roc_auc_score(t, p[:, 1])))
print("precision", repr(metrics.precision_score(t, pred)))
print("recall", repr(metrics.recall_score(t, pred)))
print("f1", repr(metrics.f1_score(t, pred)))
print("brier", repr(metrics.brier_score_loss(t, p[:, 1])))
print("share 1", repr(float(np.mean(pred == 1))))

t, p = multi()
pred = p.argmax(axis=1)
print("multiclass")
print("accuracy", repr(metrics.accuracy_score(t, pred)))
print("log_loss", repr(metrics.log_loss(t, p)))
print("roc_auc", repr(metrics.roc_auc_score(t, p, multi_class="ovr", average="macro")))
print("precision", repr(metrics.precision_score(t, pred, average="macro", zero_division=0)))
print("recall", repr(metrics.recall_score(t, pred, average="macro", zero_division=0)))
print("f1", repr(metrics.f1_score(t, pred, average="macro", zero_division=0)))
print("brier", repr(metrics.brier_score_loss(t, p)))
print("share 0", repr(float(np.mean(pred == 0))))
