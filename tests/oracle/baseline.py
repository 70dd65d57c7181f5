"""Expected training baseline for src/monitor/baseline.rs's tests, from numpy.

Run from the repository root:  /work/venv-sci/bin/python tests/oracle/baseline.py

The same estimator as baseline.rs with numpy's own generator (not the same
draws): windows of 500 rows drawn with replacement from the 442 training
(y_true, y_pred) pairs; per window MAE, RMSE, R², bias = mean(y_pred - y_true),
max |error|; per metric over windows the mean, the std (ddof=1) and the 1st
and 99th percentiles (numpy's linear). 200,000 windows give the expected
values; splitting them into 100 batches of 2,000 (the size `train` uses)
gives the Monte-Carlo standard error of each figure at 2,000 windows (the
std of the figure across batches), which sets the tests' tolerances.
"""
import numpy as np

d = np.loadtxt("data/diabetes.csv", delimiter=",", skiprows=1)
raw, y = d[:, :10], d[:, 10]
n = len(raw)
X = (raw - raw.mean(axis=0)) / (raw.std(axis=0) * np.sqrt(n))
A = np.c_[np.ones(n), X]
pred = A @ np.linalg.lstsq(A, y, rcond=None)[0]

WINDOW, BATCH, BATCHES = 500, 2000, 100
rng = np.random.default_rng(20261129)
figs = {k: [] for k in ["mae", "rmse", "r2", "bias", "max_error"]}
for _ in range(BATCHES):
    idx = rng.integers(0, n, size=(BATCH, WINDOW))
    yt, yp = y[idx], pred[idx]
    e = yp - yt
    figs["mae"].append(np.abs(e).mean(axis=1))
    figs["rmse"].append(np.sqrt((e**2).mean(axis=1)))
    ss_tot = ((yt - yt.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    figs["r2"].append(1 - (e**2).sum(axis=1) / ss_tot)
    figs["bias"].append(e.mean(axis=1))
    figs["max_error"].append(np.abs(e).max(axis=1))


def band(v):
    return np.array([v.mean(), v.std(ddof=1), np.percentile(v, 1), np.percentile(v, 99)])


print("// metric: (mean, std, p01, p99) over 200,000 windows; then the MC standard")
print("// error of each at 2,000 windows (std across 100 batches)")
for k, batches in figs.items():
    allv = np.concatenate(batches)
    per = np.array([band(b) for b in batches])
    print(f"{k}: ({', '.join(repr(float(x)) for x in band(allv))}), ({', '.join(repr(float(x)) for x in per.std(axis=0, ddof=1))})")
