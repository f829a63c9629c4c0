#!/usr/bin/env python3
"""Mean log density of the window against k-of-N votes (issue #14): window AUROC on
basicmotions and vowels12 (seed 0 default fit), over windows whose N rows are all
normal or all anomalous. Votes count the vectors below the q quantile of the
validation log densities. Needs numpy, scikit-learn and a release build.
Usage: python3 maf-train/scripts/votes.py
"""
import os, subprocess, tempfile
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view as swv
from sklearn.metrics import roc_auc_score

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release", "maf-train")
tmp = tempfile.mkdtemp()
for name in ("basicmotions", "vowels12"):
    f = lambda s: os.path.join(ROOT, "data", "%s_%s.csv" % (name, s))
    m = os.path.join(tmp, name + ".maf")
    subprocess.run([BIN, "fit", "--data", f("train"), "--valid", f("valid"), "--out", m, "-q"], check=True)
    def lp(s):
        out = os.path.join(tmp, "%s_%s.csv" % (name, s))
        subprocess.run([BIN, "score", "--model", m, "--data", f(s), "--out", out], check=True)
        return np.loadtxt(out, delimiter=",", skiprows=1, usecols=0)
    va, te = lp("valid"), lp("test")
    lab = np.loadtxt(f("test_labels"), skiprows=1).astype(bool)
    for n in (5, 10, 20):
        w = swv(lab, n)
        anom, norm = w.all(1), (~w).all(1)
        keep = anom | norm
        line = ["%s N=%d mean %.4f" % (name, n, roc_auc_score(anom[keep], -swv(te, n).mean(1)[keep]))]
        for q in (0.01, 0.05, 0.1, 0.25):
            votes = swv(te < np.quantile(va, q), n).sum(1)
            line.append("votes(q=%g) %.4f" % (q, roc_auc_score(anom[keep], votes[keep])))
        print("  ".join(line))
