#!/usr/bin/env python3
"""Does re-estimating the standardisation shift on site help (issue #14)? For each
set, seed 0-4 models calibrated by windows.py (pass its temporary folder), the
healthy test rows get +0.5 training SD on two columns; the site is their first
M=200 rows. Compared on the healthy rows after them (false-alarm rate at P=0.01,
N=10) and on all-normal vs all-anomalous windows of the shifted test file (AUROC):
(a) the model as fitted, (b) `recalibrate` (the median shift of the threshold),
(c) the inputs re-centred by the site mean minus the training mean (what a new
standardisation shift does), with the threshold recalibrated on the re-centred site.
Usage: python3 maf-train/scripts/recenter.py /tmp/maf-windows-XXXX
"""
import json, os, subprocess, sys
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release", "maf-train")
tmp = sys.argv[1]


def run(*a):
    r = subprocess.run([BIN, *a], capture_output=True, text=True)
    if r.returncode:
        sys.exit(r.stderr)
    return r.stdout


def write(path, cols, X, L=None):
    with open(path, "w") as f:
        f.write(",".join(cols) + "\n")
        for r in X:
            f.write(",".join(repr(float(v)) for v in r) + "\n")
    if L is not None:
        with open(path + ".labels", "w") as f:
            f.write("anomaly\n" + "".join("%d\n" % v for v in L))


def ev(m, d, labels=None):
    a = ["eval", "--model", m, "--data", d, "--window", "10", "--json"]
    if labels:
        a += ["--labels", labels]
    return json.loads(run(*a))


print("| set | seed | FA as fitted | FA recalibrated | FA re-centred + recalibrated | AUROC as fitted | AUROC re-centred |")
print("|---|---|---|---|---|---|---|")
for name in ("basicmotions", "vowels12"):
    f = lambda s: os.path.join(ROOT, "data", "%s_%s.csv" % (name, s))
    x = np.genfromtxt(f("test"), delimiter=",", names=True)
    cols = list(x.dtype.names)
    X = np.array([x[c] for c in cols]).T
    L = np.loadtxt(f("test_labels"), skiprows=1).astype(bool)
    T = np.genfromtxt(f("train"), delimiter=",", names=True)
    T = np.array([T[c] for c in cols]).T
    S = X.copy()
    S[:, :2] += 0.5 * T.std(axis=0)[:2]
    H = S[~L]
    shift = H[:200].mean(axis=0) - T.mean(axis=0)
    files = {}
    for tag, Y in (("plain", S), ("recentred", S - shift)):
        write(os.path.join(tmp, tag + "_site.csv"), cols, Y[~L][:200])
        write(os.path.join(tmp, tag + "_rest.csv"), cols, Y[~L][200:])
        write(os.path.join(tmp, tag + "_all.csv"), cols, Y, L.astype(int))
        files[tag] = [os.path.join(tmp, tag + s) for s in ("_site.csv", "_rest.csv", "_all.csv")]
    for seed in range(5):
        m = os.path.join(tmp, "%s_%d_10_0.01.maf" % (name, seed))
        out = []
        re = {}
        for tag in ("plain", "recentred"):
            site, rest, allf = files[tag]
            re[tag] = os.path.join(tmp, "re_%s.maf" % tag)
            run("recalibrate", "--model", m, "--data", site, "--out", re[tag])
        fa = lambda mm, tag: ev(mm, files[tag][1])["false_alarm_rate"]
        au = lambda mm, tag: ev(mm, files[tag][2], files[tag][2] + ".labels")["window_auroc"]
        print("| %s | %d | %.4f | %.4f | %.4f | %.4f | %.4f |" % (
            name, seed, fa(m, "plain"), fa(re["plain"], "plain"), fa(re["recentred"], "recentred"),
            au(m, "plain"), au(m, "recentred")))
