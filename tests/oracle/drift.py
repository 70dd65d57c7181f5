"""Expected drift figures for src/monitor/drift.rs's unit tests, from scipy/numpy.

Run from the repository root:  /work/venv-sci/bin/python tests/oracle/drift.py
(written with scipy 1.17.1, numpy 2.4.6). Prints Rust literals pasted into the tests.

The window: rows (i*i + 3*i) % 442 for i in 0..500 of the data (a subset of
the rows, some many times), bmi shifted by +2 raw units, then sklearn's diabetes scaling. The
reference: the 442 scaled rows; its predictions: OLS with intercept on them
(the model `train` fits, equal to sklearn's LinearRegression).
"""
import numpy as np
from scipy import stats

d = np.loadtxt("data/diabetes.csv", delimiter=",", skiprows=1)
raw, y = d[:, :10], d[:, 10]
n = len(raw)
mean = raw.mean(axis=0)
scale = raw.std(axis=0) * np.sqrt(n)  # population std, as sklearn
X = (raw - mean) / scale
A = np.c_[np.ones(n), X]
beta = np.linalg.lstsq(A, y, rcond=None)[0]
ref_pred = A @ beta

idx = (np.arange(500) ** 2 + 3 * np.arange(500)) % 442
wraw = raw[idx].copy()
wraw[:, 2] += 2.0
W = (wraw - mean) / scale
wpred = np.c_[np.ones(500), W] @ beta

EPS = 1e-4  # Evidently's replacement for an empty bin's share


def psi_cont(ref, cur):
    edges = np.quantile(ref, np.linspace(0.1, 0.9, 9))  # linear, numpy's default
    r = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=10) / len(ref)
    c = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=10) / len(cur)
    r = np.where(r == 0, EPS, r)
    c = np.where(c == 0, EPS, c)
    return float(np.sum((c - r) * np.log(c / r)))


def ks_asymp(ref, cur):
    # statrs' TwoSidedAsymptotic: Kolmogorov's limit at en = m*n/(m+n), no
    # finite-n correction (scipy's method="asymp" uses kstwo.sf(d, round(en))).
    D = stats.ks_2samp(ref, cur).statistic
    m, k = len(ref), len(cur)
    return float(D), float(stats.kstwobign.sf(np.sqrt(m * k / (m + k)) * D)), float(stats.ks_2samp(ref, cur, method="exact").pvalue)


rows = []
for j in range(10):
    ref, cur = X[:, j], W[:, j]
    w1 = float(stats.wasserstein_distance(ref, cur) / np.std(ref))  # ddof=0
    if j == 1:
        lo, hi = np.unique(ref)
        rc = np.array([(ref < (lo + hi) / 2).sum(), (ref >= (lo + hi) / 2).sum()])
        cc = np.array([(cur < (lo + hi) / 2).sum(), (cur >= (lo + hi) / 2).sum()])
        chi2, p, _, _ = stats.chi2_contingency(np.array([rc, cc]), correction=False)
        r, c = rc / rc.sum(), cc / cc.sum()
        psi = float(np.sum((c - r) * np.log(c / r)))
        rows.append((float(chi2), float(p), psi, w1, float("nan")))
    else:
        D, p, pexact = ks_asymp(ref, cur)
        rows.append((D, p, psi_cont(ref, cur), w1, pexact))
D, p, pexact = ks_asymp(ref_pred, wpred)
rows.append((D, p, psi_cont(ref_pred, wpred), float(stats.wasserstein_distance(ref_pred, wpred) / np.std(ref_pred)), pexact))

print("// (statistic, p_value, psi, wasserstein/std, scipy ks_2samp exact p)")
print("const EXPECTED: [(f64, f64, f64, f64, f64); 11] = [")
for r in rows:
    print("    (" + ", ".join(repr(v) if v == v else "f64::NAN" for v in r) + "),")
print("];")

# Small hand-made samples for the pure functions.
a = np.array([151., 75, 141, 206, 135, 97, 138, 63, 110, 310])
b = np.array([206.1, 68.2, 176.9, 166.1, 128.4, 106.3, 73.9, 118.8, 158.8, 213.9, 75, 99])
D, p, pexact = ks_asymp(a, b)
print("// small: ks D, p (asymptotic), wasserstein (raw, not divided)")
print(repr(D), repr(p), repr(float(stats.wasserstein_distance(a, b))))
chi2, p, _, _ = stats.chi2_contingency(np.array([[235, 207], [260, 240]]), correction=False)
print("// chi2 [[235,207],[260,240]]:", repr(float(chi2)), repr(float(p)))
