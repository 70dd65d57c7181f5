"""The oracle of `modelwatch run --data FILE --target COLUMN --model ARTIFACT`:
scikit-learn, scipy and numpy on the same rows.

Run by tests/it/run_own.rs in the test venv (scikit-learn 1.9.1, numpy
2.4.6, scipy 1.17.1; target/test-venv, made by the tests). Two commands:

  run_own.py make DIR
      Writes two files of one regression (seeded), with two numeric
      columns, three categorical ones ("region" has no effect on y) and a
      few missing cells:
      - train.csv: 2,000 rows, what the model is fitted on (about 1,980
        kept: the reference keeps every value below 2,000);
      - shifted.csv: 2,000 rows from the same population, except that
        the mix of "color" moved (green 10%, red 10%, blue 60%) and 10% of
        the rows have a level the training data never had ("purple"):
        only "color" drifted;
      - gaps.csv: 2,000 rows of the training population with missing
        cells: from row 1,000 on 30% miss x1 and 10% miss size, and every
        50th row misses y (data.missing = "keep").

  run_own.py windows TRAIN RUN TARGET WINDOW
      Fits scikit-learn on TRAIN as `modelwatch train --data` does (rows
      with a missing cell left out; StandardScaler on numeric columns,
      OneHotEncoder(drop="first", handle_unknown="ignore") on categorical
      ones; LinearRegression), predicts RUN's rows (those without a missing
      cell, in file order), and prints one JSON object: the predictions,
      and for each full window of WINDOW consecutive rows its figures:
      mae, rmse, r2, bias (mean of prediction - truth), max_error, and per
      column (and for "prediction") the drift figures modelwatch writes:
      p (KS asymptotic: scipy.stats.kstwobign.sf(sqrt(en) * D) for a
      numeric column, on modelwatch's grid of 1e-6 std; chi2_contingency(correction=False) over the training
      levels for a categorical one), psi (deciles of the training values,
      numpy.quantile linear, searchsorted left, an empty share 1e-4; or
      over the levels), wasserstein (scipy's distance / np.std of the
      training values; none for a categorical column), drift (1 when p is
      below 0.05 / the number of features, 0.05 for the prediction, or the
      window has an unseen level) and,
      for a categorical column, unseen (rows with a level not in training).

  run_own.py windows-keep TRAIN RUN TARGET WINDOW
      The same for `data.missing = "keep"`: RUN's rows missing their target
      are left out, the others kept with their missing cells; a missing
      number is imputed with its training mean (SimpleImputer(strategy=
      "mean") fitted on the training rows) and a missing level encodes as
      all zeros (as an unknown one); each column's drift figures are of its
      values that are there, and each column gets "missing": the share of
      the window's rows missing it.
"""
import csv
import json
import sys

import numpy as np

from tabular import MISSING, number  # the same reading of a cell as train's oracle

EPS = 1e-4


def make(out):
    rng = np.random.default_rng(21)
    effect = {"red": 4.0, "green": -2.0, "blue": 0.5, "purple": 1.0}

    def write(path, n, colors, p_colors, missing_every):
        x1 = rng.normal(10, 3, n)
        x2 = rng.uniform(-5, 5, n)
        color = rng.choice(colors, n, p=p_colors)
        size = rng.choice(["S", "M", "L", "XL"], n, p=[0.4, 0.3, 0.2, 0.1])
        region = rng.choice(["north", "south", "east", "west"], n)  # no effect on y
        y = 3 * x1 - 2 * x2 + np.array([effect[c] for c in color]) + (size == "XL") * 7 + rng.normal(0, 1.5, n)
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["x1", "color", "x2", "size", "region", "y"])
            for i in range(n):
                row = [repr(float(x1[i])), str(color[i]), repr(float(x2[i])), str(size[i]), str(region[i]), repr(float(y[i]))]
                if i % missing_every == 7:
                    row[i % 5] = ["", "NA", "NaN"][i % 3]
                w.writerow(row)

    write(f"{out}/train.csv", 2000, ["red", "green", "blue"], [0.45, 0.35, 0.20], 101)
    write(f"{out}/shifted.csv", 2000, ["red", "green", "blue", "purple"], [0.10, 0.10, 0.70, 0.10], 97)
    # The training population, with missing cells: from row 1,000 on 30%
    # of the rows miss x1 and 10% miss size; every 50th row misses y.
    write(f"{out}/gaps.csv", 2000, ["red", "green", "blue"], [0.45, 0.35, 0.20], 10**9)
    with open(f"{out}/gaps.csv", newline="") as f:
        rows = list(csv.reader(f))
    for i, row in enumerate(rows[1:]):
        if i >= 1000 and rng.random() < 0.3:
            row[0] = "NA"
        if i >= 1000 and rng.random() < 0.1:
            row[3] = ""
        if i % 50 == 49:
            row[5] = "NaN"
    with open(f"{out}/gaps.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], [[c.strip() for c in r] for r in rows[1:]]
    body = [r for r in body if not any(c in MISSING for c in r)]
    return header, {name: [r[j] for r in body] for j, name in enumerate(header)}


def psi(r, c):
    r = np.where(r == 0, EPS, r)
    c = np.where(c == 0, EPS, c)
    return float(np.sum((c - r) * np.log(c / r)))


def numeric_drift(ref, cur):
    from scipy import stats

    # KS and the PSI bins see the values on modelwatch's comparison grid,
    # 1e-6 of the reference's std (src/monitor/drift.rs, "Precision"): two
    # values closer than that are a tie. The Wasserstein distance does not.
    step = 1e-6 * np.std(ref)
    g_ref, g_cur = np.round(ref / step) * step, np.round(cur / step) * step
    D = stats.ks_2samp(g_ref, g_cur).statistic
    m, k = len(ref), len(cur)
    edges = np.quantile(g_ref, np.linspace(0.1, 0.9, 9))
    r = np.bincount(np.searchsorted(edges, g_ref, side="left"), minlength=10) / m
    c = np.bincount(np.searchsorted(edges, g_cur, side="left"), minlength=10) / k
    return {
        "p": float(stats.kstwobign.sf(np.sqrt(m * k / (m + k)) * D)),
        "psi": psi(r, c),
        "wasserstein": float(stats.wasserstein_distance(ref, cur) / np.std(ref)),
    }


def categorical_drift(levels, ref, cur):
    from scipy import stats

    rc = np.array([ref.count(l) for l in levels])
    cc = np.array([cur.count(l) for l in levels])
    keep = (rc + cc) > 0
    table = np.array([rc[keep], cc[keep]])
    p = 1.0
    if table.shape[1] >= 2 and cc.sum() > 0:
        p = float(stats.chi2_contingency(table, correction=False)[1])
    return {
        "p": p,
        "psi": psi(rc / rc.sum(), cc / max(cc.sum(), 1)) if cc.sum() > 0 else 0.0,
        "unseen": int(sum(1 for v in cur if v not in levels)),
    }


def read_keep(path, target):
    """The rows of `path` whose target is there, missing cells as None."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], [[c.strip() for c in r] for r in rows[1:]]
    t = header.index(target)
    body = [r for r in body if r[t] not in MISSING]
    return header, {name: [None if r[j] in MISSING else r[j] for r in body]
                    for j, name in enumerate(header)}


def windows(train_path, run_path, target, window, keep=False):
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    header, train = read(train_path)
    _, run = read_keep(run_path, target) if keep else read(run_path)
    features = [h for h in header if h != target]
    numeric = [h for h in features if all(number(c) is not None for c in train[h])]
    categorical = [h for h in features if h not in numeric]
    scaler = StandardScaler().fit(np.array([[float(c) for c in train[h]] for h in numeric]).T)
    enc = OneHotEncoder(drop="first", handle_unknown="ignore", sparse_output=False)
    enc.fit(np.array([train[h] for h in categorical], dtype=object).T)

    imputer = SimpleImputer(strategy="mean").fit(
        np.array([[float(c) for c in train[h]] for h in numeric]).T)
    GONE = "\x00missing"  # not a level: encodes as all zeros

    def design(cols):
        nums = np.array([[np.nan if c is None else float(c) for c in cols[h]] for h in numeric]).T
        cats = np.array([[GONE if c is None else c for c in cols[h]] for h in categorical],
                        dtype=object).T
        return np.hstack([scaler.transform(imputer.transform(nums)), enc.transform(cats)])

    import warnings
    warnings.simplefilter("ignore")  # "unknown categories ... encoded as all zeros": meant
    y_train = np.array([float(c) for c in train[target]])
    model = LinearRegression().fit(design(train), y_train)
    ref_pred = model.predict(design(train))
    y = np.array([float(c) for c in run[target]])
    pred = model.predict(design(run))
    out = {"rows": len(y), "predictions": [float(p) for p in pred], "windows": []}
    for start in range(0, len(y) - window + 1, window):
        s = slice(start, start + window)
        e = pred[s] - y[s]
        yt = y[s]
        w = {
            "mae": float(np.mean(np.abs(e))),
            "rmse": float(np.sqrt(np.mean(e * e))),
            "r2": float(1 - np.sum(e * e) / np.sum((yt - yt.mean()) ** 2)),
            "bias": float(np.mean(e)),
            "max_error": float(np.max(np.abs(e))),
            "drift": {},
        }
        for h in numeric:
            ref = np.array([float(c) for c in train[h]])
            cur = np.array([float(c) for c in run[h][s] if c is not None])
            w["drift"][h] = numeric_drift(ref, cur)
        for h in categorical:
            levels = sorted(set(train[h]))
            w["drift"][h] = categorical_drift(levels, train[h], [c for c in run[h][s] if c is not None])
        if keep:
            for h in features:
                w["drift"][h]["missing"] = sum(1 for c in run[h][s] if c is None) / window
        w["drift"]["prediction"] = numeric_drift(ref_pred, pred[s])
        # modelwatch's decision: a feature at 0.05 / features (Bonferroni),
        # the prediction at 0.05 (monitor.drift_p_value's default); a level
        # never seen in training is drift of its own.
        for name, d in w["drift"].items():
            level = 0.05 if name == "prediction" else 0.05 / len(features)
            d["drift"] = int(d["p"] < level or d.get("unseen", 0) > 0)
        out["windows"].append(w)
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        windows(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]),
                keep=sys.argv[1] == "windows-keep")
