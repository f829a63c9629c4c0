#!/usr/bin/env python3
"""Windowed decisions, measured (issue #14): for basicmotions and vowels12, seeds
0-4, `fit` with defaults, then `recalibrate --window N --false-alarm-rate P` on the
validation rows (what `fit --window N --false-alarm-rate P` stores) and `eval
--window N` on the test rows: window AUROC, false-alarm rate against P, detection
delay. Then a simulated site shift (+0.5 standard deviations on two columns of the
test rows): the false-alarm rate before and after `recalibrate` on the first M=200
shifted healthy rows, measured on the healthy rows after them.

Needs numpy and a release build (cargo build --release -p maf-train). Usage:
  python3 maf-train/scripts/windows.py [--seeds 0,1,2,3,4] [--out docs/windows.md]
"""
import argparse, json, os, subprocess, sys, tempfile
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release", "maf-train")
DATA = os.path.join(ROOT, "data")


def run(*args):
    r = subprocess.run([BIN, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("maf-train %s failed: %s" % (" ".join(args), r.stderr))
    return r.stdout


def ev(model, data, labels, n):
    a = ["eval", "--model", model, "--data", data, "--window", str(n), "--json"]
    if labels:
        a += ["--labels", labels]
    return json.loads(run(*a))


def write_csv(path, header, rows):
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(repr(float(v)) for v in r) + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--sets", default="basicmotions,vowels12")
    p.add_argument("--out")
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    out = []
    say = lambda s: (print(s), out.append(s))
    tmp = tempfile.mkdtemp(prefix="maf-windows-")
    for name in args.sets.split(","):
        tr, va, te, lab = (os.path.join(DATA, "%s_%s.csv" % (name, s))
                           for s in ("train", "valid", "test", "test_labels"))
        say("\n## %s\n" % name)
        say("| seed | N | P | window AUROC | false-alarm rate | ratio to P | 95% interval (valid) | delay (vectors) |")
        say("|---|---|---|---|---|---|---|---|")
        shift_rows = []
        for seed in seeds:
            base = os.path.join(tmp, "%s_%d.maf" % (name, seed))
            run("fit", "--data", tr, "--valid", va, "--out", base, "--seed", str(seed), "-q")
            for n in (1, 5, 10, 20):
                for rate in (1e-2, 1e-3):
                    m = os.path.join(tmp, "%s_%d_%d_%g.maf" % (name, seed, n, rate))
                    run("recalibrate", "--model", base, "--data", va, "--out", m,
                        "--window", str(n), "--false-alarm-rate", str(rate))
                    meta = json.loads(run("inspect", m, "--json"))["metadata"]
                    iv = meta.get("window_calibration", "?").split("rate ")[-1]
                    o = ev(m, te, lab, n)
                    say("| %d | %d | %g | %.4f | %.4f | %.1f | %s | %s |" % (
                        seed, n, rate, o["window_auroc"], o["false_alarm_rate"],
                        o["false_alarm_rate"] / rate, iv,
                        "%.1f" % o["detection_delay_mean"] if o["detection_delay_mean"] is not None else "missed"))
            # Site shift: +0.5 SD (of the training rows) on the first two columns of
            # the healthy test rows; site = the first 200, evaluated on the rest.
            x = np.genfromtxt(te, delimiter=",", names=True)
            cols = list(x.dtype.names)
            X = np.array([x[c] for c in cols]).T
            L = np.loadtxt(lab, skiprows=1).astype(bool)
            T = np.genfromtxt(tr, delimiter=",", names=True)
            sd = np.array([T[c] for c in cols]).std(axis=1)
            H = X[~L].copy()
            H[:, :2] += 0.5 * sd[:2]
            site, rest = os.path.join(tmp, "site.csv"), os.path.join(tmp, "rest.csv")
            write_csv(site, cols, H[:200])
            write_csv(rest, cols, H[200:])
            plain = os.path.join(tmp, "plain.csv")
            write_csv(plain, cols, X[~L][200:])
            for n in (1, 10):
                m = os.path.join(tmp, "%s_%d_%d_0.01.maf" % (name, seed, n))
                m2 = os.path.join(tmp, "re.maf")
                run("recalibrate", "--model", m, "--data", site, "--out", m2)
                unshifted = ev(m, plain, None, n)["false_alarm_rate"]
                before = ev(m, rest, None, n)["false_alarm_rate"]
                after = ev(m2, rest, None, n)["false_alarm_rate"]
                shift_rows.append("| %d | %d | %.4f | %.4f | %.4f |" % (seed, n, unshifted, before, after))
        say("\nSite shift (+0.5 SD on columns %s; P = 0.01; site M = 200 rows; rates on the %d healthy rows after them):\n" % (",".join(cols[:2]), len(H) - 200))
        say("| seed | N | FA, no shift | FA shifted, before recalibrate | FA shifted, after |")
        say("|---|---|---|---|---|")
        for r in shift_rows:
            say(r)
    if args.out:
        open(args.out, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
