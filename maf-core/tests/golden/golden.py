#!/usr/bin/env python3
"""Golden values for maf-core, computed independently of the Rust code.

Float64 throughout. Builds small MAFs the way the paper's reference code does --
hidden unit k gets degree k % max(1, D-1) + 1 (NOT sorted), dense weight matrices
multiplied by explicit 0/1 masks -- evaluates log densities and base vectors, then
packs the same weights into the blob layout of docs/blob-format.md (units sorted by
degree, masked weights dropped) with the Python writers given in that document.

Models a, b, c (format version 1, standard normal base) are pure Python. Models d,
e, f (format version 2) end in a Gaussian-mixture base: random means, random SPD
covariances and random weights summing to 1, stored as the precision factor
W = inverse(cholesky(cov)) (numpy) of the document's `mixture_section`; their
reference log density is scipy's multivariate normal log pdf of each component
(from the covariance that the stored f32 factor describes, not from the factor
form the Rust code evaluates) combined with scipy's logsumexp.

Run from this directory: `python3 golden.py` rewrites golden_*.maf and golden.txt
(needs numpy and scipy: `pip install numpy scipy`). The version-1 blobs and their
lines of golden.txt come out byte for byte as before the version-2 cases were added.
"""
import math
import struct
import zlib

import numpy as np
from scipy.special import logsumexp
from scipy.stats import multivariate_normal


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


class Rng:
    """A 64-bit LCG (Knuth's MMIX constants); values rounded to f32."""

    def __init__(self, seed):
        self.state = seed

    def uniform(self, lo, hi):
        self.state = (6364136223846793005 * self.state + 1442695040888963407) % 2**64
        return f32(lo + (hi - lo) * (self.state >> 11) / 2**53)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def write_blob_v1(path, D, C, H, K, L, bn, weights, relu=True, threshold=None, meta=""):
    """The version-1 writer of docs/blob-format.md, verbatim."""
    head = b"MAFBLOB\0" + varint(1)
    head += b"".join(varint(v) for v in (D, C, H, K, L))
    head += bytes([1 if bn else 0, 0 if relu else 1])
    head += b"\x00" if threshold is None else b"\x01" + struct.pack("<f", threshold)
    m = meta.encode()
    head += varint(len(m)) + m
    wbytes = struct.pack("<%df" % len(weights), *weights)
    wlen = varint(len(wbytes))
    for pad in range(4):
        if (len(head) + 1 + pad + len(wlen)) % 4 == 0:
            break
    body = head + varint(pad) + bytes(pad) + wlen + wbytes
    open(path, "wb").write(body + struct.pack("<I", zlib.crc32(body)))


def write_blob(path, D, C, H, K, L, bn, weights, relu=True, threshold=None, meta="",
               base=0, components=0, window=1, window_threshold=None, window_median=None,
               columns=()):
    """The version-2 writer of docs/blob-format.md, verbatim."""
    opt = lambda t: b"\x00" if t is None else b"\x01" + struct.pack("<f", t)
    text = lambda s: varint(len(s.encode())) + s.encode()
    head = b"MAFBLOB\0" + varint(2)
    head += b"".join(varint(v) for v in (D, C, H, K, L))
    head += bytes([1 if bn else 0, 0 if relu else 1, base]) + varint(components)
    head += opt(threshold)
    head += varint(window) + b"\x00" + opt(window_threshold) + opt(window_median)
    head += text("\n".join(columns)) + text(meta)
    wbytes = struct.pack("<%df" % len(weights), *weights)
    wlen = varint(len(wbytes))
    for pad in range(4):
        if (len(head) + 1 + pad + len(wlen)) % 4 == 0:
            break
    body = head + varint(pad) + bytes(pad) + wlen + wbytes
    open(path, "wb").write(body + struct.pack("<I", zlib.crc32(body)))


def mixture_section(w, means, covs, diagonal=False):
    """The base section of docs/blob-format.md, verbatim: weights w[k] (summing to
    1), means[k][D] and covariances covs[k][D][D] (diagonal ones for diagonal=True)."""
    out = []
    for wk, m, S in zip(w, means, covs):
        D = len(m)
        W = np.linalg.inv(np.linalg.cholesky(np.asarray(S, dtype=np.float64)))
        W = W.astype(np.float32).astype(np.float64)   # the factor as stored
        c = math.log(wk) + np.log(np.diag(W)).sum() - 0.5 * D * math.log(2 * math.pi)
        out += [float(c)] + [float(v) for v in m]
        if diagonal:
            out += [float(W[j, j]) for j in range(D)]
        else:
            out += [float(W[j, i]) for j in range(D) for i in range(j + 1)]
    return out


class Mixture:
    """A random valid Gaussian mixture in dimension D, and its float64 log density."""

    def __init__(self, D, K, diagonal, seed):
        r = Rng(seed)
        self.diagonal = diagonal
        raw = [r.uniform(0.2, 1.0) for _ in range(K)]
        self.w = [v / sum(raw) for v in raw]
        self.means = [[r.uniform(-1.5, 1.5) for _ in range(D)] for _ in range(K)]
        self.covs = []
        for _ in range(K):
            if diagonal:
                S = np.diag([r.uniform(0.3, 2.0) ** 2 for _ in range(D)])
            else:
                A = np.array([[r.uniform(-0.8, 0.8) for _ in range(D)] for _ in range(D)])
                S = A @ A.T + 0.3 * np.eye(D)
            self.covs.append(S)
        self.section = mixture_section(self.w, self.means, self.covs, diagonal)
        # The reference evaluates the mixture the blob describes: the covariance
        # implied by the stored (f32) factor W, cov = inverse(W^T W).
        self.stored_covs = []
        per = 1 + D + (D if diagonal else D * (D + 1) // 2)
        for k in range(K):
            f = self.section[k * per + 1 + D:(k + 1) * per]
            W = np.zeros((D, D))
            if diagonal:
                W[np.diag_indices(D)] = f
            else:
                W[np.tril_indices(D)] = f  # row-major lower triangle
            self.stored_covs.append(np.linalg.inv(W.T @ W))

    def log_density(self, u):
        terms = [math.log(wk) + multivariate_normal.logpdf(u, mean=m, cov=S)
                 for wk, m, S in zip(self.w, self.means, self.stored_covs)]
        return float(logsumexp(terms))


class Model:
    def __init__(self, D, C, H, K, L, bn, relu, seed):
        self.D, self.C, self.H, self.K, self.L, self.bn, self.relu = D, C, H, K, L, bn, relu
        r = Rng(seed)
        w = lambda: r.uniform(-0.6, 0.6)
        self.x_mean = [r.uniform(-1, 1) for _ in range(D)]
        self.x_inv = [r.uniform(0.5, 2.0) for _ in range(D)]
        self.c_mean = [r.uniform(-1, 1) for _ in range(C)]
        self.c_inv = [r.uniform(0.5, 2.0) for _ in range(C)]
        Dm = max(1, D - 1)
        self.deg = [k % Dm + 1 for k in range(H)]  # reference assignment, unsorted
        self.mades = []
        for _ in range(L):
            m = {}
            m["b1"] = [w() for _ in range(H)]
            m["W1"] = [[w() for _ in range(D)] for _ in range(H)]  # [unit][position]
            m["Wc"] = [[w() for _ in range(C)] for _ in range(H)]
            if K == 2:
                m["b2"] = [w() for _ in range(H)]
                m["W2"] = [[w() for _ in range(H)] for _ in range(H)]
            m["bmu"] = [w() for _ in range(D)]
            m["balpha"] = [w() for _ in range(D)]
            m["Wmu"] = [[w() for _ in range(H)] for _ in range(D)]  # [position][unit]
            m["Walpha"] = [[w() for _ in range(H)] for _ in range(D)]
            m["scale"] = [r.uniform(0.5, 1.5) for _ in range(D)]
            m["shift"] = [r.uniform(-0.5, 0.5) for _ in range(D)]
            self.mades.append(m)

    # Masks exactly as in the reference code.
    def mask1(self, k, p):  # input degree p+1 <= hidden degree
        return 1.0 if p + 1 <= self.deg[k] else 0.0

    def mask2(self, j, k):  # m_prev <= m_next
        return 1.0 if self.deg[k] <= self.deg[j] else 0.0

    def masko(self, p, k):  # m_last < d_out
        return 1.0 if self.deg[k] < p + 1 else 0.0

    def act(self, a):
        return max(0.0, a) if self.relu else math.tanh(a)

    def order(self, l, p):
        return p if l % 2 == 0 else self.D - 1 - p

    def to_base(self, x, c):
        D, C, H = self.D, self.C, self.H
        s = [(x[i] - self.x_mean[i]) * self.x_inv[i] for i in range(D)]
        cz = [(c[j] - self.c_mean[j]) * self.c_inv[j] for j in range(C)]
        logdet = sum(math.log(v) for v in self.x_inv)
        for l, m in enumerate(self.mades):
            z = [s[self.order(l, p)] for p in range(D)]  # position order
            h = [self.act(m["b1"][k]
                          + sum(m["W1"][k][p] * self.mask1(k, p) * z[p] for p in range(D))
                          + sum(m["Wc"][k][j] * cz[j] for j in range(C)))
                 for k in range(H)]
            if self.K == 2:
                h = [self.act(m["b2"][j] + sum(m["W2"][j][k] * self.mask2(j, k) * h[k]
                                               for k in range(H)))
                     for j in range(H)]
            u = [0.0] * D
            for p in range(D):
                mu = m["bmu"][p] + sum(m["Wmu"][p][k] * self.masko(p, k) * h[k] for k in range(H))
                al = m["balpha"][p] + sum(m["Walpha"][p][k] * self.masko(p, k) * h[k]
                                          for k in range(H))
                u[self.order(l, p)] = (z[p] - mu) * math.exp(-al)
                logdet -= al
            if self.bn:
                s = [u[i] * m["scale"][i] + m["shift"][i] for i in range(D)]
                logdet += sum(math.log(v) for v in m["scale"])
            else:
                s = u
        return s, logdet

    def log_prob(self, x, c):
        u, logdet = self.to_base(x, c)
        return sum(-0.5 * v * v for v in u) - 0.5 * self.D * math.log(2 * math.pi) + logdet, u

    def packed(self):
        """Weights in blob order: units sorted by degree (stable), masked ones dropped."""
        D, C, H = self.D, self.C, self.H
        perm = sorted(range(H), key=lambda k: self.deg[k])
        cum = lambda d: sum(1 for k in range(H) if self.deg[k] <= d)
        out = self.x_mean + self.x_inv + self.c_mean + self.c_inv
        for m in self.mades:
            for k in perm:
                out += [m["b1"][k]] + m["W1"][k][: self.deg[k]] + m["Wc"][k]
            if self.K == 2:
                for j in perm:
                    out += [m["b2"][j]] + [m["W2"][j][k] for k in perm[: cum(self.deg[j])]]
            for p in range(D):
                out += [m["bmu"][p], m["balpha"][p]]
            for k in perm:  # output columns: unit k feeds positions deg(k) .. D
                for p in range(self.deg[k], D):
                    out += [m["Wmu"][p][k], m["Walpha"][p][k]]
            if self.bn:
                out += m["scale"] + m["shift"]
        return out


CASES = [
    # name, D, C, H, K, L, batch_norm, relu, seed
    ("a", 3, 0, 5, 1, 2, True, True, 1),
    ("b", 4, 2, 7, 2, 3, True, False, 2),
    ("c", 2, 0, 3, 1, 3, False, True, 3),
]

# Format version 2, mixture base.
V2_CASES = [
    # name, D, C, H, K, L, batch_norm, relu, seed, base kind (1 full, 2 diagonal),
    # components, window, window_threshold, window_median, columns
    ("d", 3, 0, 6, 1, 2, True, True, 4, 1, 3, 16, -5.25, -2.5, ("temp", "humidity", "pressure")),
    ("e", 4, 2, 7, 1, 2, False, False, 5, 2, 2, 1, None, None,
     ("ax", "ay", "az", "gyro", "speed", "load")),
    ("f", 2, 1, 5, 2, 3, True, True, 6, 1, 2, 4, -3.0, 1.75, ()),
]


def fmt(v):
    return ",".join(repr(t) for t in v)


def main():
    lines = ["# name|x|context|log_prob|u  (float64 reference, see golden.py)"]
    for name, D, C, H, K, L, bn, relu, seed in CASES:
        model = Model(D, C, H, K, L, bn, relu, seed)
        w = model.packed()
        write_blob_v1("golden_%s.maf" % name, D, C, H, K, L, bn, w, relu=relu,
                      threshold=-6.5, meta="golden model %s" % name)
        r = Rng(100 + seed)
        for _ in range(4):
            x = [r.uniform(-2, 2) for _ in range(D)]
            c = [r.uniform(-1, 1) for _ in range(C)]
            lp, u = model.log_prob(x, c)
            lines.append("%s|%s|%s|%r|%s" % (name, fmt(x), fmt(c), lp, fmt(u)))
    for (name, D, C, H, K, L, bn, relu, seed, kind, comps, window, wthr,
         wmed, columns) in V2_CASES:
        model = Model(D, C, H, K, L, bn, relu, seed)
        mix = Mixture(D, comps, kind == 2, 200 + seed)
        w = model.packed() + mix.section
        write_blob("golden_%s.maf" % name, D, C, H, K, L, bn, w, relu=relu,
                   threshold=-6.5, meta="golden model %s" % name, base=kind,
                   components=comps, window=window, window_threshold=wthr, window_median=wmed,
                   columns=columns)
        r = Rng(100 + seed)
        for _ in range(4):
            x = [r.uniform(-2, 2) for _ in range(D)]
            c = [r.uniform(-1, 1) for _ in range(C)]
            u, logdet = model.to_base(x, c)
            lp = mix.log_density(u) + logdet
            lines.append("%s|%s|%s|%r|%s" % (name, fmt(x), fmt(c), lp, fmt(u)))
    open("golden.txt", "w").write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
