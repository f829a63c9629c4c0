#!/usr/bin/env python3
"""The PyTorch peer of scripts/bench-host.sh: zuko's MAF at the same shape.

Prints two lines, `zuko training ...: N rows/s` (Adam, minibatches of BATCH rows,
loss -mean log p) and `zuko log density ...: N rows/s` (batched, no gradient, the
same in-memory rows every pass), on the threads of the first argument.
Usage: bench_zuko.py THREADS [D L H BATCH]
"""
import sys
import time

import torch
import zuko

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
d, layers, hidden, batch = (int(v) for v in (sys.argv[2:6] or (8, 5, 64, 256)))
torch.set_num_threads(threads)
torch.manual_seed(0)

x = torch.randn(8192, d).cumsum(dim=1) * 0.5
flow = zuko.flows.MAF(features=d, transforms=layers, hidden_features=[hidden],
                      activation=torch.nn.ReLU)
opt = torch.optim.Adam(flow.parameters(), lr=1e-3)


def epoch():
    perm = torch.randperm(x.shape[0])
    for i in range(0, x.shape[0] - batch + 1, batch):
        xb = x[perm[i:i + batch]]
        loss = -flow().log_prob(xb).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (x.shape[0] // batch) * batch


epoch()  # warm-up
rows, start = 0, time.perf_counter()
while time.perf_counter() - start < 4.0:
    rows += epoch()
rate = rows / (time.perf_counter() - start)
print(f"zuko training D={d} L={layers} H={hidden} batch {batch}, {threads} threads: {rate:.0f} rows/s")

big = torch.randn(65536, d)
with torch.no_grad():
    flow().log_prob(big)  # warm-up
    rows, start = 0, time.perf_counter()
    while time.perf_counter() - start < 2.0:
        flow().log_prob(big)
        rows += big.shape[0]
rate = rows / (time.perf_counter() - start)
print(f"zuko log density D={d} L={layers} H={hidden}, batched, {threads} threads: {rate:.0f} rows/s")
