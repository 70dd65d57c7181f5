"""Exports the ONNX models the ONNX tests run, and what they should predict.

`python3 onnx_models.py DIR` writes into DIR:
- train_reg.csv, new_reg.csv: a regression (target `y`), and
  train_cls.csv, new_cls.csv: a 3-class classification (target `kind`,
  levels "alpha", "beta", "gamma"), over the same rows of four numeric
  columns x1..x4 and an `id`, seeded;
- for each model NAME (lin, ridge, forest, boost, logistic, forest_cls):
  NAME.onnx, exported by skl2onnx from the scikit-learn model fitted on
  the training rows, and NAME.expected.csv: per new row its id, what
  onnxruntime-python predicts (`ort`, or `ort_p0..` per class) and what
  scikit-learn predicts (`skl`, `skl_p0..`);
- wrong_inputs.onnx (a model of three columns), corrupt.onnx (bytes that are
  not a model), zipmap.onnx (a classifier exported with ZipMap);
- sqrt.onnx (sqrt(x2 - 0.05), built with onnx.helper: NaN for a row with
  x2 < 0.05) and train_sqrt.csv (the training rows with x2 >= 0.05), for
  the rows a model cannot predict.

The tests compare modelwatch's predictions with these: onnxruntime-python to
1e-5 relative, scikit-learn to 1e-4.
"""

import csv
import os
import sys

import numpy as np
import onnxruntime as rt
from skl2onnx import to_onnx
from sklearn.ensemble import (
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

CLASSES = np.array(["alpha", "beta", "gamma"])


def data(rng, n):
    x = np.column_stack(
        [
            rng.normal(50, 10, n),
            rng.uniform(0, 1, n),
            rng.exponential(3, n),
            rng.normal(0, 1, n),
        ]
    ).round(4)
    y = 3 * x[:, 0] - 20 * x[:, 1] + 2 * x[:, 2] ** 1.5 + 5 * np.sin(x[:, 3]) + rng.normal(0, 4, n)
    score = 0.08 * (x[:, 0] - 50) + 2 * (x[:, 1] - 0.5) + rng.normal(0, 0.6, n)
    kind = CLASSES[np.digitize(score, [-0.4, 0.4])]
    return x, y.round(4), kind


def write(path, x, target, values):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "x1", "x2", "x3", "x4", target])
        for i in range(len(values)):
            w.writerow([i, *[repr(float(v)) for v in x[i]], values[i]])


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20261204)
    x, y, kind = data(rng, 3000)
    xn, yn, kindn = data(rng, 1000)
    write(os.path.join(out, "train_reg.csv"), x, "y", [repr(float(v)) for v in y])
    write(os.path.join(out, "new_reg.csv"), xn, "y", [repr(float(v)) for v in yn])
    write(os.path.join(out, "train_cls.csv"), x, "kind", kind)
    write(os.path.join(out, "new_cls.csv"), xn, "kind", kindn)
    x32, xn32 = x.astype(np.float32), xn.astype(np.float32)
    models = {
        "lin": (LinearRegression(), y),
        "ridge": (Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=1.0))]), y),
        "forest": (RandomForestRegressor(n_estimators=50, max_depth=8, random_state=0), y),
        "boost": (GradientBoostingRegressor(n_estimators=80, max_depth=3, random_state=0), y),
        "logistic": (LogisticRegression(max_iter=1000), kind),
        "forest_cls": (RandomForestClassifier(n_estimators=50, max_depth=8, random_state=0), kind),
    }
    for name, (model, target) in models.items():
        model.fit(x, target)
        classifier = hasattr(model, "predict_proba")
        options = {id(model): {"zipmap": False}} if classifier else None
        onx = to_onnx(model, x32[:1], options=options, target_opset=17)
        path = os.path.join(out, name + ".onnx")
        with open(path, "wb") as f:
            f.write(onx.SerializeToString())
        sess = rt.InferenceSession(path, providers=["CPUExecutionProvider"])
        got = sess.run(None, {sess.get_inputs()[0].name: xn32})
        with open(os.path.join(out, name + ".expected.csv"), "w", newline="") as f:
            w = csv.writer(f)
            if classifier:
                assert list(model.classes_) == list(CLASSES), model.classes_
                ort_p = got[1]
                skl_p = model.predict_proba(xn)
                k = len(CLASSES)
                w.writerow(["id"] + [f"ort_p{j}" for j in range(k)] + [f"skl_p{j}" for j in range(k)])
                for i in range(len(xn)):
                    w.writerow([i, *map(repr, map(float, ort_p[i])), *map(repr, map(float, skl_p[i]))])
            else:
                ort_y = got[0].reshape(-1)
                skl_y = model.predict(xn)
                w.writerow(["id", "ort", "skl"])
                for i in range(len(xn)):
                    w.writerow([i, repr(float(ort_y[i])), repr(float(skl_y[i]))])
    # A model of three columns: the data has four.
    wrong = LinearRegression().fit(x[:, :3], y)
    with open(os.path.join(out, "wrong_inputs.onnx"), "wb") as f:
        f.write(to_onnx(wrong, x32[:1, :3], target_opset=17).SerializeToString())
    with open(os.path.join(out, "corrupt.onnx"), "wb") as f:
        f.write(b"\x08\x07\x12\x04not an onnx model at all" * 10)
    keep = x[:, 1] >= 0.05
    write(os.path.join(out, "train_sqrt.csv"), x[keep], "y", [repr(float(v)) for v in y[keep]])
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["X", "col"], ["x2"], axis=1),
            helper.make_node("Sub", ["x2", "shift"], ["d"]),
            helper.make_node("Sqrt", ["d"], ["variable"]),
        ],
        "sqrt",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])],
        [
            helper.make_tensor("col", TensorProto.INT64, [1], [1]),
            helper.make_tensor("shift", TensorProto.FLOAT, [1], [0.05]),
        ],
    )
    sqrt = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with open(os.path.join(out, "sqrt.onnx"), "wb") as f:
        f.write(sqrt.SerializeToString())
    zip_model = LogisticRegression(max_iter=1000).fit(x, kind)
    with open(os.path.join(out, "zipmap.onnx"), "wb") as f:
        f.write(to_onnx(zip_model, x32[:1], target_opset=17).SerializeToString())


if __name__ == "__main__":
    main(sys.argv[1])
