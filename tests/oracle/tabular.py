"""The oracle of `modelwatch train --data FILE --target COLUMN`: scikit-learn.

Run by tests/it/train_own.rs in the test venv (scikit-learn 1.9.1, numpy
2.4.6, scipy 1.17.1; target/test-venv, made by the tests). Two commands:

  tabular.py make DIR
      Writes the data sets the tests train on:
      - reg.csv: 600 rows of a regression with two numeric and two
        categorical columns and missing cells ("", NA, NaN), seeded;
      - binary.csv: scikit-learn's bundled breast cancer data (569 rows, 30
        numeric columns) with the target as "malignant"/"benign" and a
        categorical column "size" (terciles of mean radius);
      - multi.csv: scikit-learn's bundled wine data (178 rows, 13 numeric
        columns, classes class_0..class_2) with a categorical column "hue_band".

  tabular.py check ARTIFACT CSV TARGET
      Fits scikit-learn on CSV the way the artifact says it was fitted
      (rows with a missing cell left out; numeric columns StandardScaler,
      categorical ones OneHotEncoder, drop="first" for a regression;
      LinearRegression, or LogisticRegression() with C=1 at a tight
      tolerance), computes the artifact's own predictions from its
      parameters with numpy, and prints one JSON object: the largest
      difference of predictions (regression) or probabilities
      (classification), scikit-learn's R² or accuracy and log loss, and
      the artifact's monitor reference against numpy (check_reference).
"""
import csv
import json
import sys

import numpy as np

MISSING = {"", "NA", "NaN"}


def number(cell):
    try:
        v = float(cell)
    except ValueError:
        return None
    return v if np.isfinite(v) else None


def sk_classes_of(values):
    """Numeric class labels as the artifact names them ("-0" is "0"), else None."""
    if all(number(c) is not None for c in values):
        return [repr(float(c) + 0.0).removesuffix(".0") for c in values]
    return None


def make(out):
    from sklearn.datasets import load_breast_cancer, load_wine

    rng = np.random.default_rng(20)
    n = 600
    x1 = rng.normal(10, 3, n)
    x2 = rng.uniform(-5, 5, n)
    color = rng.choice(["red", "green", "blue"], n)
    size = rng.choice(["S", "M", "L", "XL"], n, p=[0.4, 0.3, 0.2, 0.1])
    effect = {"red": 4.0, "green": -2.0, "blue": 0.5}
    y = 3 * x1 - 2 * x2 + np.array([effect[c] for c in color]) + (size == "XL") * 7 + rng.normal(0, 1.5, n)
    with open(f"{out}/reg.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["x1", "color", "x2", "size", "y"])
        for i in range(n):
            row = [repr(float(x1[i])), str(color[i]), repr(float(x2[i])), str(size[i]), repr(float(y[i]))]
            if i % 37 == 5:
                row[i % 4] = ["", "NA", "NaN"][i % 3]
            w.writerow(row)

    def write(name, data, target_names, cat_name, cat_col):
        X, t = data.data, data.target
        cuts = np.quantile(X[:, cat_col], [1 / 3, 2 / 3])
        band = np.where(X[:, cat_col] < cuts[0], "low", np.where(X[:, cat_col] < cuts[1], "mid", "high"))
        names = [c.replace(" ", "_") for c in data.feature_names]
        with open(f"{out}/{name}", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(names + [cat_name, "label"])
            for i in range(len(t)):
                w.writerow([repr(float(v)) for v in X[i]] + [str(band[i]), target_names[t[i]]])

    # Degenerate columns OLS must survive as scikit-learn's minimum-norm
    # solution does: a repeated column, one scaled and shifted, a constant
    # one, and a level ("aaa") seen only in a row left out for a missing cell.
    n = 200
    a = rng.normal(0, 1, n)
    b = rng.normal(5, 2, n)
    tone = rng.choice(["dark", "light"], n)
    yd = 2 * a - b + (tone == "dark") * 3 + rng.normal(0, 0.5, n)
    with open(f"{out}/degenerate.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "a_again", "a_scaled", "k", "b", "tone", "y"])
        for i in range(n):
            w.writerow([repr(float(a[i])), repr(float(a[i])), repr(float(2 * a[i] + 1)), "5", repr(float(b[i])), str(tone[i]), repr(float(yd[i]))])
        w.writerow(["1.0", "1.0", "3.0", "5", "", "aaa", "0.5"])
    # Classes written as numbers, 0 and -0 among them: one class.
    with open(f"{out}/signed_zero.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["x1", "x2", "t"])
        for i in range(300):
            x1, x2 = rng.normal(0, 1, 2)
            t = 1 if x1 + x2 > 0.8 else (-1 if x1 - x2 < -0.8 else 0)
            w.writerow([repr(float(x1)), repr(float(x2)), ["0", "-0", "0.0"][i % 3] if t == 0 else str(t)])

    write("binary.csv", load_breast_cancer(), ["malignant", "benign"], "size", 0)
    write("multi.csv", load_wine(), ["class_0", "class_1", "class_2"], "hue_band", 10)


def read_kept(csv_path):
    """The header, the rows without a missing cell, and their columns by name."""
    with open(csv_path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], [[c.strip() for c in r] for r in rows[1:]]
    body = [r for r in body if not any(c in MISSING for c in r)]
    return header, body, {name: [r[j] for r in body] for j, name in enumerate(header)}


def artifact_inputs(art, cols):
    """The artifact's own model inputs, from its encoding of the raw values."""
    mine = []
    for f in art["features"]:
        values, enc = cols[f["name"]], f["encoding"]
        if enc["encode"] == "standardise":
            mine.append(((np.array([float(v) for v in values]) - enc["mean"]) / enc["scale"])[:, None])
        else:
            levels = f["levels"][enc["first"]:]
            mine.append(np.array([[1.0 if v == l else 0.0 for l in levels] for v in values]).reshape(len(values), len(levels)))
    return np.hstack(mine)


def artifact_probabilities(art, X):
    """A classifier artifact's class probabilities of inputs X, with numpy."""
    m = art["model"]
    W = np.array(m["weights"])
    h = X @ W.T + np.array(m["intercepts"])
    if W.shape[0] == 1:
        p1 = 1 / (1 + np.exp(-h[:, 0]))
        return np.c_[1 - p1, p1]
    e = np.exp(h - h.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def check(artifact_path, csv_path, target):
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.metrics import accuracy_score, log_loss, r2_score
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    art = json.load(open(artifact_path))
    header, body, cols = read_kept(csv_path)
    features = [h for h in header if h != target]
    numeric = [h for h in features if all(number(c) is not None for c in cols[h])]
    categorical = [h for h in features if h not in numeric]
    regression = art["task"] == "regression"

    parts = []
    if numeric:
        parts.append(StandardScaler().fit_transform(np.array([[float(c) for c in cols[h]] for h in numeric]).T))
    if categorical:
        enc = OneHotEncoder(drop="first" if regression else None, sparse_output=False)
        parts.append(enc.fit_transform(np.array([cols[h] for h in categorical], dtype=object).T))
    X = np.hstack(parts)

    Xa = artifact_inputs(art, cols)
    m = art["model"]
    out = {"rows": len(body)}
    if regression:
        y = np.array([float(c) for c in cols[target]])
        sk = LinearRegression().fit(X, y)
        p_sk = sk.predict(X)
        p_art = Xa @ np.array(m["coefficients"]) + m["intercept"]
        out["max_pred_diff"] = float(np.max(np.abs(p_sk - p_art) / np.maximum(1.0, np.abs(p_sk))))
        out["r2"] = float(r2_score(y, p_sk))
    else:
        y = np.array(cols[target])
        if all(number(c) is not None for c in y):  # numbers as classes, -0 == 0
            y = np.array([float(c) + 0.0 for c in y])
        sk = LogisticRegression(C=1.0, tol=1e-10, max_iter=100000).fit(X, y)
        p_sk = sk.predict_proba(X)
        p_art = artifact_probabilities(art, Xa)
        names = [str(c) for c in sk.classes_]
        if isinstance(sk.classes_[0], float):
            names = [repr(float(c)).removesuffix(".0") for c in sk.classes_]
        order = [m["classes"].index(c) for c in names]
        out["max_pred_diff"] = float(np.max(np.abs(p_sk - p_art[:, order])))
        out["accuracy"] = float(accuracy_score(y, sk.predict(X)))
        out["log_loss"] = float(log_loss(y, p_sk))
        out["classes"] = [str(c) for c in sk.classes_]
    out.update(check_reference(art, cols, target, regression, p_sk))
    print(json.dumps(out))


def check_reference(art, cols, target, regression, p_sk):
    """The artifact's monitor reference against numpy on the same rows:
    the largest difference of the numeric distributions (sorted values and
    std, ddof 0), whether the level and predicted-class counts are equal,
    and for the bands of linear window metrics (whose bootstrap expectation
    is the figure over every row) the z-score of the band's mean."""
    ref = art["reference"]
    diffs, counts_equal = [0.0], True
    for f, d in zip(art["features"], ref["features"]):
        values = cols[f["name"]]
        if d["type"] == "numeric":
            v = np.sort(np.array([float(x) for x in values]))
            diffs.append(float(np.max(np.abs(v - np.array(d["quantiles"])))))
            diffs.append(abs(float(np.std(v)) - d["std"]))
        else:
            counts = [values.count(level) for level in f["levels"]]
            counts_equal &= counts == d["counts"]
    pred = ref["prediction"]
    bands = {b["metric"]: b for b in ref["bands"]}
    windows = ref["windows"]
    z = {}
    def zscore(metric, full):
        b = bands[metric]
        if b["std"] == 0:  # every window the same (a perfect fit): exactly the figure
            z[metric] = 0.0 if abs(b["mean"] - full) < 1e-12 else 1e9
        else:
            z[metric] = (b["mean"] - full) / (b["std"] / np.sqrt(windows))
    if regression:
        y = np.array([float(c) for c in cols[target]])
        diffs.append(float(np.max(np.abs(np.sort(p_sk) - np.array(pred["quantiles"])) / np.maximum(1.0, np.abs(np.sort(p_sk))))))
        zscore("mae", float(np.mean(np.abs(y - p_sk))))
        zscore("bias", float(np.mean(y - p_sk)))
    else:
        from sklearn.metrics import log_loss
        classes = art["model"]["classes"]
        if isinstance(sk_classes_of(cols[target]), list):
            y = np.array([classes.index(c) for c in sk_classes_of(cols[target])])
        else:
            y = np.array([classes.index(c) for c in cols[target]])
        # p_sk's columns are sklearn's classes_, sorted like the artifact's.
        if p_sk.shape[1] == 2:
            predicted = (p_sk[:, 1] >= 0.5).astype(int)
            brier = float(np.mean((p_sk[:, 1] - y) ** 2))
        else:
            predicted = p_sk.argmax(axis=1)
            brier = float(np.mean(np.sum((p_sk - np.eye(p_sk.shape[1])[y]) ** 2, axis=1)))
        counts_equal &= [int(np.sum(predicted == k)) for k in range(len(classes))] == pred["counts"]
        zscore("accuracy", float(np.mean(predicted == y)))
        zscore("log_loss", float(log_loss(y, p_sk, labels=list(range(len(classes))))))
        zscore("brier", brier)
        # The records carry class indices: mae over those.
        zscore("mae", float(np.mean(np.abs(y - predicted))))
    return {"ref_max_diff": max(diffs), "ref_counts_equal": bool(counts_equal), "band_z": z,
            "band_metrics": [b["metric"] for b in ref["bands"]]}


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        check(sys.argv[2], sys.argv[3], sys.argv[4])
