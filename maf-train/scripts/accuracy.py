#!/usr/bin/env python3
"""Accuracy check of `maf-train fit` (no shape or training flags) against the
validation-picked Gaussian mixture anchor of data/baselines.md, on every bundled
set and on 800-row subsamples of basicmotions and vowels12, seed by seed.

Not a unit test: it takes minutes. Needs numpy and scikit-learn (the anchor is
recomputed here exactly as baselines.md describes, on the same files maf sees).

    python3 maf-train/scripts/accuracy.py [--seeds 0 1 2 3 4] [--sets shuttle ...]
        [--bin target/release/maf-train] [-- extra fit options]

Bars (issue 12): test log-likelihood over normal rows >= anchor - its 2 SE, and
AUROC >= anchor AUROC - 0.002. Prints one markdown row per set and seed.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "data")
SETS = ["shuttle", "basicmotions", "vowels12", "banana2", "basicmotions@800", "vowels12@800"]


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], np.array(rows[1:], dtype=np.float64)


def write(path, header, x):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in x:
            w.writerow([repr(float(v)) for v in r])


def anchor(train, valid, test, labels):
    """baselines.md's mixture: k in 1..32, full or diag, reg 1e-4, picked on valid."""
    mean, std = train.mean(0), train.std(0)
    z = lambda a: (a - mean) / std
    best = None
    for cov in ["full", "diag"]:
        for k in [1, 2, 4, 8, 16, 32]:
            if k > len(train):
                continue
            g = GaussianMixture(k, covariance_type=cov, reg_covar=1e-4, random_state=0)
            g.fit(z(train))
            v = g.score(z(valid))
            if best is None or v > best[0]:
                best = (v, g, f"{k} {cov}")
    g = best[1]
    lp = g.score_samples(z(test)) - np.log(std).sum()
    normal = lp[labels == 0]
    ll = normal.mean()
    se2 = 2 * normal.std(ddof=1) / np.sqrt(len(normal))
    return ll, se2, roc_auc_score(labels, -lp), best[2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--sets", nargs="+", default=SETS)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "maf-train"))
    ap.add_argument("extra", nargs="*")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    print("| set | seed | maf LL ± 2SE | anchor LL ± 2SE | LL bar | ok | maf AUROC | anchor AUROC | ok | model chosen | fit s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    fails = 0
    anchors = {}
    for spec in a.sets:
        name, _, sub = spec.partition("@")
        header, train = read(os.path.join(DATA, f"{name}_train.csv"))
        _, valid = read(os.path.join(DATA, f"{name}_valid.csv"))
        _, test = read(os.path.join(DATA, f"{name}_test.csv"))
        _, labels = read(os.path.join(DATA, f"{name}_test_labels.csv"))
        labels = labels[:, 0].astype(int)
        test_path = os.path.join(DATA, f"{name}_test.csv")
        label_path = os.path.join(DATA, f"{name}_test_labels.csv")
        for seed in a.seeds:
            if sub:
                n = int(sub)
                rng = np.random.default_rng(seed)
                tr = train[np.sort(rng.choice(len(train), n, replace=False))]
                va = valid[np.sort(rng.choice(len(valid), min(len(valid), n // 4), replace=False))]
                tp, vp = os.path.join(tmp, f"{name}_{n}_{seed}_train.csv"), os.path.join(tmp, f"{name}_{n}_{seed}_valid.csv")
                write(tp, header, tr)
                write(vp, header, va)
                key = (spec, seed)
            else:
                tr, va = train, valid
                tp, vp = os.path.join(DATA, f"{name}_train.csv"), os.path.join(DATA, f"{name}_valid.csv")
                key = (spec, None)
            if key not in anchors:
                anchors[key] = anchor(tr, va, test, labels)
            a_ll, a_se, a_auc, a_model = anchors[key]
            out = os.path.join(tmp, "m.maf")
            t0 = time.time()
            subprocess.run([a.bin, "fit", "--data", tp, "--valid", vp, "--out", out, "--quiet",
                            "--seed", str(seed)] + a.extra, check=True)
            secs = time.time() - t0
            ev = json.loads(subprocess.run([a.bin, "eval", "--model", out, "--data", test_path,
                                            "--labels", label_path, "--json"],
                                           check=True, capture_output=True, text=True).stdout)
            meta = json.loads(subprocess.run([a.bin, "inspect", out, "--json"], check=True,
                                             capture_output=True, text=True).stdout)["metadata"]
            ll, se, auc = ev["normal_mean_log_prob"], ev["normal_two_se"], ev["auroc"]
            ok_ll = ll >= a_ll - a_se
            ok_auc = auc >= a_auc - 0.002
            fails += (not ok_ll) + (not ok_auc)
            print(f"| {spec} | {seed} | {ll:.3f} ± {se:.3f} | {a_ll:.3f} ± {a_se:.3f} ({a_model}) | {a_ll - a_se:.3f} | "
                  f"{'yes' if ok_ll else 'NO'} | {auc:.5f} | {a_auc:.5f} | {'yes' if ok_auc else 'NO'} | "
                  f"{meta.get('model', '?')} | {secs:.0f} |", flush=True)
    print(f"\n{fails} bar(s) missed")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
