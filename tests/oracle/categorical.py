"""Expected figures of src/monitor/categorical.rs's unit tests, from scipy/numpy.

Run from the repository root:  target/test-venv/bin/python3 tests/oracle/categorical.py
(written with scipy 1.17.1, numpy 2.4.6). Prints the constants pasted into the tests.

Training counts of four levels [120, 80, 40, 10] against a window's
[30, 50, 20, 0]: chi-squared over the levels (no Yates correction), PSI with
an empty level's share replaced by 0.0001 (Evidently).
"""
import numpy as np
from scipy.stats import chi2_contingency

ref = np.array([120, 80, 40, 10])
win = np.array([30, 50, 20, 0])
res = chi2_contingency(np.array([ref, win]), correction=False)
def shares(c):
    s = c / c.sum()
    return np.where(c == 0, 0.0001, s)
r, w = shares(ref), shares(win)
psi = float(np.sum((w - r) * np.log(w / r)))
print(f"const CHI2: f64 = {float(res.statistic)!r};")
print(f"const P: f64 = {float(res.pvalue)!r};")
print(f"const PSI: f64 = {psi!r};")
