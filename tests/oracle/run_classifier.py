"""The oracle of `modelwatch run` with a classifier of the user's own data:
scikit-learn, scipy and numpy on the same rows.

Run by tests/it/run_classifier.rs in the test venv (scikit-learn 1.9.1,
numpy 2.4.6, scipy 1.17.1; target/test-venv, made by the tests), after
tabular.py make DIR. Two commands:

  run_classifier.py shuffle DIR
      Writes, from DIR/binary.csv and DIR/multi.csv (scikit-learn's breast
      cancer and wine data), their rows in a seeded random order:
      - binary_flipped.csv: the breast cancer rows, with the label of
        rows 300 to 499 (0-based, in the new order) swapped for the other
        class: the model's accuracy falls there, its inputs do not move;
      - multi_shuffled.csv: the wine rows, shuffled only.

  run_classifier.py windows ARTIFACT CSV TARGET WINDOW
      Computes the artifact's class probabilities for CSV's rows (in file
      order) with numpy from its parameters (the encoding it says, then
      the logistic or softmax function), and prints one JSON object: the
      predicted class index of every row (the positive class at a
      probability of at least 0.5 for two classes, else the most probable),
      and for each full window of WINDOW consecutive rows scikit-learn's
      figures on those probabilities: accuracy_score, log_loss (labels
      given), roc_auc (binary: roc_auc_score of the positive class;
      multiclass: the mean of roc_auc_score one-vs-rest over the classes
      with both kinds of row in the window), precision, recall and f1
      (binary: of the positive class; multiclass: average="macro",
      zero_division=0), brier (binary: brier_score_loss of the positive
      class; multiclass: the mean over rows of the summed squared
      differences), the share of each predicted class, and the drift of
      the predicted classes against the training ones the artifact's
      reference counts (scipy's chi2_contingency, correction=False, over
      the classes seen in either; PSI over the classes, an empty share
      1e-4).
"""
import csv
import json
import sys

import numpy as np

from run_own import categorical_drift
from tabular import artifact_inputs, artifact_probabilities, read_kept


def shuffle(d):
    rng = np.random.default_rng(22)
    for src, dst, flip in [("binary.csv", "binary_flipped.csv", True), ("multi.csv", "multi_shuffled.csv", False)]:
        with open(f"{d}/{src}", newline="") as f:
            rows = list(csv.reader(f))
        header, body = rows[0], rows[1:]
        body = [body[i] for i in rng.permutation(len(body))]
        if flip:
            labels = sorted(set(r[-1] for r in body))
            assert len(labels) == 2
            for r in body[300:500]:
                r[-1] = labels[1] if r[-1] == labels[0] else labels[0]
        with open(f"{d}/{dst}", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(body)


def windows(artifact_path, csv_path, target, window):
    from sklearn import metrics

    art = json.load(open(artifact_path))
    _, _, cols = read_kept(csv_path)
    classes = art["model"]["classes"]
    k = len(classes)
    y = np.array([classes.index(c) for c in cols[target]])
    p = artifact_probabilities(art, artifact_inputs(art, cols))
    pred = (p[:, 1] >= 0.5).astype(int) if k == 2 else p.argmax(axis=1)
    train_counts = art["reference"]["prediction"]["counts"]
    labels = [str(c) for c in range(k)]
    out = {"rows": len(y), "predicted": [int(c) for c in pred], "windows": []}
    for start in range(0, len(y) - window + 1, window):
        s = slice(start, start + window)
        t, ps, pr = y[s], p[s], pred[s]
        if k == 2:
            auc = metrics.roc_auc_score(t, ps[:, 1]) if len(set(t)) == 2 else None
            prf = dict(average="binary", pos_label=1, zero_division=0)
            brier = metrics.brier_score_loss(t, ps[:, 1])
        else:
            aucs = [metrics.roc_auc_score(t == c, ps[:, c]) for c in range(k) if 0 < np.sum(t == c) < len(t)]
            auc = float(np.mean(aucs)) if aucs else None
            prf = dict(average="macro", labels=list(range(k)), zero_division=0)
            brier = float(np.mean(np.sum((ps - np.eye(k)[t]) ** 2, axis=1)))
        w = {
            "accuracy": metrics.accuracy_score(t, pr),
            "log_loss": metrics.log_loss(t, ps, labels=list(range(k))),
            "roc_auc": auc,
            "precision": metrics.precision_score(t, pr, **prf),
            "recall": metrics.recall_score(t, pr, **prf),
            "f1": metrics.f1_score(t, pr, **prf),
            "brier": brier,
            "predicted_share": [float(np.mean(pr == c)) for c in range(k)],
        }
        w = {n: (float(v) if isinstance(v, (float, np.floating)) else v) for n, v in w.items()}
        # The predicted classes as a categorical column against training's.
        train_pred = [lab for lab, n in zip(labels, train_counts) for _ in range(n)]
        w["prediction"] = categorical_drift(labels, train_pred, [str(c) for c in pr])
        out["windows"].append(w)
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "shuffle":
        shuffle(sys.argv[2])
    else:
        windows(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
