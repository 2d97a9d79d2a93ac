"""`python -m fastfc bench`: GFLOP/s and speed ratios of fastfc against NumPy and PyTorch.

Timing: in one process, for each case, rounds of [fastfc block, NumPy block, PyTorch
block]; a block is 10 ms of warm-up calls (at least one) plus R timed calls (R sized so a
block lasts ~30 ms) and yields the median per call; the result is the median over rounds.
Between libraries the bench sleeps (--pause): OpenBLAS and PyTorch worker threads spin for
a while after a call and would steal the cores of whatever runs next.

Before any timing, each case checks that fastfc computes what NumPy computes on its inputs:
a fast wrong answer must not make the table.
"""
import argparse
import json
import math
import os
import platform
import time

import numpy as np

import fastfc

# 24 rows: past the stream's batches, within two of the GEMM's row tiles
FORWARD_SHAPES = [(64, 784, 128), (256, 784, 128), (256, 128, 64), (256, 64, 10), (32, 512, 512),
                  (2048, 768, 3072), (2048, 3072, 768), (32, 25088, 4096), (24, 4096, 4096),
                  (64, 4096, 4096), (1024, 1024, 1024), (2048, 2048, 2048), (1000, 999, 1001)]
QUICK_SHAPES = [(64, 784, 128), (256, 784, 128), (256, 128, 64), (256, 64, 10), (32, 512, 512),
                (1024, 1024, 1024), (1000, 999, 1001)]
TRAIN_BATCHES = [32, 256]
# Small batches against large weights (the memory-bound regime: W is streamed, never packed).
SMALL_BATCHES = [1, 2, 4, 8, 16]
# 768x3072 and 1024x4096 (9 and 16 MiB): past B_FROM_MEMORY, read from a 32 MiB L3
SMALL_WEIGHTS = [(1024, 1024), (768, 3072), (1024, 4096), (4096, 4096), (4096, 11008),
                 (25088, 4096)]
QUICK_SMALL_WEIGHTS = [(1024, 1024), (4096, 4096)]


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


# ------------------------------------------------------------------ cases: name -> callable

def _agree(what, got, want, k, norms=None):
    """Raise unless fastfc's `got` is NumPy's `want` up to rounding: 8 eps sqrt(k) times a
    bound on the terms summed (`norms`: |x_i| |w_j|, the norms of a row and a column)."""
    eps = np.finfo(want.dtype).eps
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = norms if norms is not None else np.abs(want)
    tol = 8 * eps * math.sqrt(max(k, 1)) * (scale + np.abs(want))
    bad = ~(np.abs(got - want) <= tol)
    if got.shape != want.shape or bad.any():
        raise AssertionError(f"bench case {what}: fastfc differs from NumPy in {bad.sum()} of "
                             f"{bad.size} values; no timing of a wrong result")


def _row_norms(a, axis):
    return np.sqrt(np.square(a, dtype=np.float64).sum(axis=axis))


def forward_case(m, k, n, dtype=np.float32, seed=0, packed=False):
    """linear + bias + relu, each library writing into a preallocated output (and fastfc
    with W packed once, when `packed`: it must give the same bits)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, k)).astype(dtype)
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    out = np.empty((m, n), dtype)

    def numpy_fwd():
        np.matmul(x, w, out=out)
        np.add(out, b, out=out)
        np.maximum(out, 0, out=out)

    fns = {"fastfc": lambda: fastfc.linear(x, w, b, activation="relu", out=out),
           "numpy": numpy_fwd}
    got = fns["fastfc"]().copy()
    if packed:
        pw = fastfc.pack(w)
        fns["packed"] = lambda: fastfc.linear(x, pw, b, activation="relu", out=out)
        if not np.array_equal(fns["packed"](), got):
            raise AssertionError(f"forward {m}x{k}x{n}: packed W differs from unpacked W")
    numpy_fwd()
    _agree(f"forward {m}x{k}x{n}", got, out, k,
           np.outer(_row_norms(x, 1), _row_norms(w, 0)) + np.abs(b))
    torch = _torch()
    if torch is not None:
        tx, tw, tb = (torch.from_numpy(a) for a in (x, np.ascontiguousarray(w.T), b))

        def torch_fwd():
            with torch.no_grad():
                torch.relu_(torch.nn.functional.linear(tx, tw, tb))
        fns["torch"] = torch_fwd
    return fns


def backward_case(m, k, n, dtype=np.float32, seed=0):
    """dX, dW and db of a relu layer, from dY and the forward output."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, k)).astype(dtype)
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(dtype)
    y = np.maximum(x @ w, 0)
    gy = rng.standard_normal((m, n)).astype(dtype)
    gx, gw, gb, dz = np.empty((m, k), dtype), np.empty((k, n), dtype), np.empty(n, dtype), \
        np.empty((m, n), dtype)

    def numpy_bwd():
        np.multiply(gy, y > 0, out=dz)
        np.matmul(dz, w.T, out=gx)
        np.matmul(x.T, dz, out=gw)
        np.sum(dz, axis=0, out=gb)

    fns = {"fastfc": lambda: fastfc.linear_backward(gy, x, w, y=y, activation="relu",
                                                    out=(gx, gw, gb)),
           "numpy": numpy_bwd}
    got = [g.copy() for g in fns["fastfc"]()]
    numpy_bwd()
    for name, g, want, kk, norms in (
            ("dX", got[0], gx, n, np.outer(_row_norms(dz, 1), _row_norms(w, 1))),
            ("dW", got[1], gw, m, np.outer(_row_norms(x, 0), _row_norms(dz, 0))),
            ("db", got[2], gb, m, np.abs(dz).sum(0))):
        _agree(f"backward {name} {m}x{k}x{n}", g, want, kk, norms)
    torch = _torch()
    if torch is not None:
        tx, tw, ty, tgy = (torch.from_numpy(a) for a in (x, np.ascontiguousarray(w.T), y, gy))

        def torch_bwd():
            with torch.no_grad():
                tdz = tgy * (ty > 0)
                tdz.matmul(tw)          # dX = dZ W^T (torch keeps W as (out, in))
                tdz.t().matmul(tx)      # dW
                tdz.sum(0)
        fns["torch"] = torch_bwd
    return fns


def dropout_case(n=4 * 1024 * 1024, p=0.5, dtype=np.float32):
    x = np.random.default_rng(0).standard_normal(n).astype(dtype)
    rng = np.random.default_rng(1)
    scale = dtype(1 / (1 - p))
    fns = {"fastfc": lambda: fastfc.dropout(x, p, seed=7),
           "numpy": lambda: x * (rng.random(x.shape) >= p) * scale,
           "numpy_f32rng": lambda: x * (rng.random(x.shape, dtype=np.float32) >= p) * scale}
    torch = _torch()
    if torch is not None:
        tx = torch.from_numpy(x)
        fns["torch"] = lambda: torch.nn.functional.dropout(tx, p, training=True)
    y, mask = fns["fastfc"]()
    kept = mask.mean()
    if abs(kept - (1 - p)) > 5 * math.sqrt(p * (1 - p) / n) or not np.array_equal(
            y, np.where(mask, x * scale, 0)):
        raise AssertionError(f"bench case dropout: fastfc kept {kept:.4f} of the values "
                             f"(want {1 - p}) or scaled them wrong; no timing of a wrong result")
    return fns


class NumpyMLP:
    """The 784-128-64-10 step in plain NumPy: forward, stable softmax cross-entropy,
    backward and Adam, with preallocated state."""

    def __init__(self, sizes, seed=0, lr=1e-3):
        rng = np.random.default_rng(seed)
        self.W = [(rng.standard_normal((a, b)) * np.sqrt(2 / a)).astype(np.float32)
                  for a, b in zip(sizes[:-1], sizes[1:])]
        self.b = [np.zeros(b, np.float32) for b in sizes[1:]]
        self.params = self.W + self.b
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t, self.lr = 0, lr

    def step(self, x, y):
        acts = [x]
        for i, (w, b) in enumerate(zip(self.W, self.b)):
            z = acts[-1] @ w + b
            acts.append(np.maximum(z, 0) if i < len(self.W) - 1 else z)
        z = acts[-1]
        zmax = z.max(axis=1, keepdims=True)
        e = np.exp(z - zmax)
        s = e.sum(axis=1, keepdims=True)
        n = x.shape[0]
        loss = float(np.mean(np.log(s[:, 0]) + zmax[:, 0] - z[np.arange(n), y]))
        g = e / s
        g[np.arange(n), y] -= 1
        g /= n
        gW, gb = [None] * len(self.W), [None] * len(self.W)
        for i in reversed(range(len(self.W))):
            gW[i] = acts[i].T @ g
            gb[i] = g.sum(axis=0)
            if i:
                g = (g @ self.W[i].T) * (acts[i] > 0)
        self.t += 1
        b1, b2, eps = 0.9, 0.999, 1e-8
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for p, gr, m, v in zip(self.params, gW + gb, self.m, self.v):
            m *= b1
            m += (1 - b1) * gr
            v *= b2
            v += (1 - b2) * gr * gr
            p -= (self.lr / c1) * m / (np.sqrt(v / c2) + eps)
        return loss


def _check_step(model, ref, x, y):
    """Start the NumPy MLP from the model's weights, take one step with each, and raise
    unless the losses and the updated weights agree."""
    dense = [l for l in model.layers if l.params]
    for i, layer in enumerate(dense):
        ref.W[i][...] = layer.params["W"]
        ref.b[i][...] = layer.params["b"]
    want = ref.step(x, y)
    got = model.train_on_batch(x, y)
    _agree("train step loss", got, np.float32(want), x.shape[1])
    for i, layer in enumerate(dense):
        # Adam's first step moves a weight by lr * g / (|g| + eps): by ~lr whatever the
        # gradient's size, unless |g| is near eps, where rounding may move it by a fraction
        # of lr (measured: 5e-5 at most). A wrong gradient moves many by up to 2 lr.
        for name, mine, theirs in (("W", layer.params["W"], ref.W[i]),
                                   ("b", layer.params["b"], ref.b[i])):
            off = np.count_nonzero(np.abs(mine - theirs) > ref.lr / 4)
            if off > mine.size // 1000:
                raise AssertionError(f"bench case train step: {off} of {mine.size} values of "
                                     f"{name}{i} differ from NumPy's after one Adam step; no "
                                     f"timing of a wrong result")


def train_case(batch, seed=0):
    """One train_on_batch of the 784-128-64-10 ReLU MLP (softmax cross-entropy, Adam)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    model = fastfc.Sequential([fastfc.Dense(784, 128, activation="relu"),
                               fastfc.Dense(128, 64, activation="relu"), fastfc.Dense(64, 10)],
                              loss="softmax_cross_entropy", optimizer=fastfc.optim.Adam(lr=1e-3),
                              seed=seed)
    ref = NumpyMLP([784, 128, 64, 10], seed)
    _check_step(model, ref, x, y)
    fns = {"fastfc": lambda: model.train_on_batch(x, y), "numpy": lambda: ref.step(x, y)}
    torch = _torch()
    if torch is not None:
        nn = torch.nn
        net = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                            nn.Linear(64, 10))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        lossf = nn.CrossEntropyLoss()
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def torch_step():
            opt.zero_grad()
            loss = lossf(net(tx), ty)
            loss.backward()
            opt.step()
        fns["torch"] = torch_step
    return fns


def read_bandwidth(threads, nbytes=1 << 30, rounds=5):
    """The machine's read bandwidth in bytes/s: the best of `rounds` parallel sums over
    `nbytes` of float64, one part per thread (NumPy's reductions release the GIL)."""
    from concurrent.futures import ThreadPoolExecutor
    data = np.ones(nbytes // 8)
    parts = np.array_split(data, threads)
    best = math.inf
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(rounds):
            t0 = time.perf_counter()
            list(pool.map(np.sum, parts))
            best = min(best, time.perf_counter() - t0)
    return data.nbytes / best


def l3_bytes():
    """The last-level cache's size from sysfs (Linux), else None."""
    try:
        with open("/sys/devices/system/cpu/cpu0/cache/index3/size") as f:
            text = f.read().strip()
    except OSError:
        return None
    scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1], 1)
    return int(text.rstrip("KM")) * scale


# ------------------------------------------------------------------ timing

def _block(fn, reps, warmup=0.01):
    """Median seconds per call over `reps` calls, after `warmup` seconds of calls (at least
    one): after the pause between libraries the clock ramps up and idle worker threads wake
    over the first few milliseconds, whichever library comes next."""
    end = time.perf_counter() + warmup
    fn()
    while time.perf_counter() < end:
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def compare(fns, rounds=7, block_s=0.03, pause=0.25):
    """Median seconds per call for each library, timed in alternating blocks."""
    reps = {}
    for name, fn in fns.items():
        # sized from warm calls: a single call after the pause may wait milliseconds for
        # a sleeping worker thread, and a block of 3 calls sized from it measured that
        # wake-up (32x512x512 at half speed in 3 of 3 full runs on the 2-vCPU VM)
        once = _block(fn, 3)
        reps[name] = max(3, min(500, int(block_s / max(once, 1e-7))))
        time.sleep(pause)
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(_block(fn, reps[name]))
            time.sleep(pause)
    return {name: float(np.median(t)) for name, t in times.items()}


def geomean(values):
    values = [v for v in values if v and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


# ------------------------------------------------------------------ tables

def _gemm_table(title, case, shapes, flops_per, args, out):
    libs = ["fastfc", "numpy"] + (["torch"] if _torch() else [])
    print(f"\n{title}")
    head = f"{'shape m x k x n':>18}" + "".join(f"{l + ' GF/s':>13}" for l in libs)
    head += "".join(f"{'vs ' + l:>10}" for l in libs[1:])
    print(head)
    rows = []
    for m, k, n in shapes:
        t = compare(case(m, k, n), rounds=args.rounds, pause=args.pause)
        gf = {l: flops_per * m * n * k / t[l] * 1e-9 for l in libs}
        ratio = {l: t[l] / t["fastfc"] for l in libs[1:]}
        rows.append({"shape": [m, k, n], "seconds": t, "gflops": gf, "ratio": ratio})
        print(f"{f'{m}x{k}x{n}':>18}" + "".join(f"{gf[l]:13.1f}" for l in libs)
              + "".join(f"{ratio[l]:9.2f}x" for l in libs[1:]), flush=True)
    summary = {l: {"geomean": geomean([r["ratio"][l] for r in rows]),
                   "min": min(r["ratio"][l] for r in rows)} for l in libs[1:]}
    print(f"{'geomean':>18}" + " " * 13 * len(libs)
          + "".join(f"{summary[l]['geomean']:9.2f}x" for l in libs[1:]))
    print(f"{'min':>18}" + " " * 13 * len(libs)
          + "".join(f"{summary[l]['min']:9.2f}x" for l in libs[1:]))
    out.append({"table": title, "rows": rows, "summary": summary})


def _small_batch_table(args, out):
    """fp32 forward, m <= 16 against large W, as given (streamed unpacked) and packed once
    (fastfc.pack: the panels kernel): ratios to NumPy and, where W is larger than the L3,
    fastfc's weight bytes per second as a fraction of the read bandwidth measured right
    before each such W (the host's bandwidth moves by 2x within minutes on a shared VM)."""
    bw = read_bandwidth(args.threads)
    l3 = l3_bytes()
    print(f"\nsmall batches, float32 linear + bias + relu, W as given and packed once "
          f"(fastfc.pack); read bandwidth {bw / 1e9:.1f} GB/s (parallel sum over 1 GiB, "
          f"{args.threads} threads; measured again before each W past the L3), "
          f"L3 {'unknown' if l3 is None else f'{l3 >> 20} MiB'}")
    print(f"{'shape m x k x n':>18}{'fastfc GB/s':>13}{'packed GB/s':>13}{'numpy GB/s':>12}"
          f"{'vs numpy':>10}{'packed':>8}{'of bandwidth':>14}{'packed':>8}{'read GB/s':>11}")
    rows = []
    for k, n in QUICK_SMALL_WEIGHTS if args.quick else SMALL_WEIGHTS:
        big = l3 is not None and 4 * k * n > l3
        if big:
            bw = read_bandwidth(args.threads)
        for m in SMALL_BATCHES:
            fns = forward_case(m, k, n, packed=True)
            fns.pop("torch", None)
            t = compare(fns, rounds=args.rounds, pause=args.pause)
            wbytes = 4 * k * n
            gbs = {lib: wbytes / t[lib] / 1e9 for lib in t}
            ratio = {lib: t["numpy"] / t[lib] for lib in ("fastfc", "packed")}
            frac = {lib: wbytes / t[lib] / bw if big else None for lib in ("fastfc", "packed")}
            rows.append({"shape": [m, k, n], "seconds": t, "ratio": {"numpy": ratio["fastfc"]},
                         "packed_ratio": {"numpy": ratio["packed"]},
                         "bandwidth_fraction": frac["fastfc"],
                         "packed_bandwidth_fraction": frac["packed"],
                         "read_bandwidth": bw if big else None})
            print(f"{f'{m}x{k}x{n}':>18}{gbs['fastfc']:13.1f}{gbs['packed']:13.1f}"
                  f"{gbs['numpy']:12.1f}{ratio['fastfc']:9.2f}x{ratio['packed']:7.2f}x"
                  + (f"{100 * frac['fastfc']:13.0f}%{100 * frac['packed']:7.0f}%"
                     f"{bw / 1e9:11.1f}" if big else ""), flush=True)
    summary = {}
    for key, label in (("ratio", ""), ("packed_ratio", "packed_")):
        ratios = [r[key]["numpy"] for r in rows]
        fr = [r[label + "bandwidth_fraction"] for r in rows
              if r[label + "bandwidth_fraction"] is not None]
        summary.update({label + "geomean": geomean(ratios), label + "min": min(ratios),
                        label + "median_bandwidth_fraction": float(np.median(fr)) if fr else None})
    fmt = lambda v: f"{100 * v:.0f}%" if v is not None else ""   # noqa: E731
    print(f"{'geomean':>18}{'':38}{summary['geomean']:9.2f}x{summary['packed_geomean']:7.2f}x"
          f"{fmt(summary['median_bandwidth_fraction']):>14}"
          f"{fmt(summary['packed_median_bandwidth_fraction']):>8} (median)")
    print(f"{'min':>18}{'':38}{summary['min']:9.2f}x{summary['packed_min']:7.2f}x")
    out.append({"table": "small batch", "read_bandwidth": bw, "l3_bytes": l3, "rows": rows,
                "summary": summary})


def _single_thread_gemm(args, out):
    old = fastfc.get_num_threads()
    fastfc.set_num_threads(1)
    try:
        n = 2048 if not args.quick else 1024
        rng = np.random.default_rng(0)
        a = rng.standard_normal((n, n)).astype(np.float32)
        b = rng.standard_normal((n, n)).astype(np.float32)
        c = np.empty((n, n), np.float32)
        # The clock drifts on this kind of machine: interleave peak and GEMM measurements
        # and compare medians.
        peaks, times = [], []
        for _ in range(args.rounds):
            peaks.append(fastfc._core.fma_peak_gflops(np.float32))
            times.append(_block(lambda: fastfc.gemm(a, b, out=c), 3))
    finally:
        fastfc.set_num_threads(old)
    gf = 2 * n ** 3 / float(np.median(times)) * 1e-9
    peak = float(np.median(peaks))
    print(f"\nsgemm {n}^3 on one thread: {gf:.1f} GFLOP/s = {100 * gf / peak:.0f}% of the "
          f"measured single-thread FMA peak ({peak:.1f} GFLOP/s, median of {len(peaks)} "
          f"measurements interleaved with the GEMM; range {min(peaks):.1f}-{max(peaks):.1f})")
    out.append({"table": "sgemm one thread", "n": n, "gflops": gf, "peak": peak,
                "fraction_of_peak": gf / peak})


def _dropout_table(args, out):
    n = 4 * 1024 * 1024
    t = compare(dropout_case(n), rounds=args.rounds, pause=args.pause)
    print(f"\ndropout(x, 0.5) on {n} float32 (ms per call)")
    for lib, s in t.items():
        print(f"{lib:>14}: {s * 1e3:8.2f} ms  ({s / t['fastfc']:.1f}x the time of fastfc)")
    out.append({"table": "dropout", "n": n, "seconds": t,
                "ratio": {l: s / t["fastfc"] for l, s in t.items()}})


def _train_table(args, out):
    print("\ntrain_on_batch, 784-128-64-10 ReLU MLP, softmax cross-entropy, Adam, float32 "
          "(us per step)")
    for batch in TRAIN_BATCHES:
        t = compare(train_case(batch), rounds=args.rounds, pause=args.pause)
        print(f"  batch {batch:>4}: " + "  ".join(f"{l} {s * 1e6:8.0f}" for l, s in t.items())
              + "   fastfc is " + ", ".join(f"{t[l] / t['fastfc']:.2f}x {l}"
                                           for l in t if l != "fastfc"), flush=True)
        out.append({"table": "train step", "batch": batch, "seconds": t,
                    "ratio": {l: s / t["fastfc"] for l, s in t.items() if l != "fastfc"}})


INTERLEAVED_SHAPES = [(256, 784, 128), (64, 784, 128), (32, 512, 512), (1024, 1024, 1024)]


def _interleaved(m, k, n, reps, rounds, pause):
    """Median seconds per call of NumPy's 256x512 @ 512x256 float32 matmul and of an
    m x k x n linear + relu, alone and alternating in one loop (each timed on its own).
    The linear is fastfc's, and as a control NumPy's own (the same loop with no fastfc in
    it: what the mix costs through the caches and the BLAS's spinning workers)."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(s).astype(np.float32) for s in ((256, 512), (512, 256)))
    c = np.empty((256, 256), np.float32)
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((k, n)).astype(np.float32)
    bias, y = np.zeros(n, np.float32), np.empty((m, n), np.float32)

    def np_call():
        np.matmul(a, b, out=c)

    linears = {"fastfc": lambda: fastfc.linear(x, w, bias, activation="relu", out=y),
               "control": lambda: np.maximum(np.add(np.matmul(x, w, out=y), bias, out=y), 0,
                                             out=y)}
    times = {f"{who} {what}": [] for who in linears
             for what in ("numpy alone", "alone", "numpy mixed", "mixed")}
    for _ in range(rounds):
        for who, linear in linears.items():
            times[f"{who} numpy alone"].append(_block(np_call, reps))
            time.sleep(pause)
            times[f"{who} alone"].append(_block(linear, reps))
            time.sleep(pause)
            tn, tf = [], []
            for _ in range(reps + 3):
                t0 = time.perf_counter()
                np_call()
                t1 = time.perf_counter()
                linear()
                tn.append(t1 - t0)
                tf.append(time.perf_counter() - t1)
            times[f"{who} numpy mixed"].append(float(np.median(tn[3:])))
            times[f"{who} mixed"].append(float(np.median(tf[3:])))
            time.sleep(pause)
    return {name: float(np.median(t)) for name, t in times.items()}


def _interleaved_table(args, out):
    print("\ninterleaved with NumPy: np.matmul 256x512x256 then a linear(relu) in one loop, each "
          "against its time alone (target <= 1.15x); control: NumPy's own linear in fastfc's "
          "place")
    for m, k, n in INTERLEAVED_SHAPES:
        reps = 20 if m * n * k > 1e8 else 100
        t = _interleaved(m, k, n, reps, args.rounds, args.pause)
        def ratio(who, pre=""):
            return t[f"{who} {pre}mixed"] / t[f"{who} {pre}alone"]
        r = {"numpy": ratio("fastfc", "numpy "), "fastfc": ratio("fastfc"),
             "control numpy": ratio("control", "numpy "), "control linear": ratio("control")}
        print(f"{f'{m}x{k}x{n}':>18}: numpy {t['fastfc numpy alone'] * 1e6:8.0f} -> "
              f"{t['fastfc numpy mixed'] * 1e6:8.0f} us ({r['numpy']:.2f}x)   fastfc "
              f"{t['fastfc alone'] * 1e6:8.0f} -> {t['fastfc mixed'] * 1e6:8.0f} us "
              f"({r['fastfc']:.2f}x)   control: numpy {r['control numpy']:.2f}x, its linear "
              f"{r['control linear']:.2f}x", flush=True)
        out.append({"table": "interleaved", "shape": [m, k, n], "seconds": t, "ratio": r})


TABLES = ("forward", "backward", "float64", "small", "bf16", "mlp", "gemm", "dropout", "train",
          "interleaved")


def _at_least(low, kind):
    """An argparse type: a number of `kind` no smaller than `low`."""
    def parse(text):
        v = kind(text)
        if not v >= low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {text}")
        return v
    parse.__name__ = kind.__name__
    return parse


def _tables(text):
    names = text.split(",")
    unknown = [n for n in names if n not in TABLES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown table {', '.join(unknown)}; "
                                         f"choose from {','.join(TABLES)}")
    return set(names)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m fastfc bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer and smaller shapes")
    ap.add_argument("--threads", type=_at_least(1, int), default=2,
                    help="threads for fastfc and torch (default 2)")
    ap.add_argument("--rounds", type=_at_least(1, int), default=7,
                    help="alternating rounds per shape; the median is reported (default 7)")
    ap.add_argument("--pause", type=_at_least(0, float), default=0.25,
                    help="seconds between libraries (spinning BLAS threads)")
    ap.add_argument("--only", type=_tables, default=set(TABLES),
                    help=f"comma-separated tables to run, of {','.join(TABLES)} (default all)")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--plot", help="also draw the ratios per shape into this image "
                                   "(matplotlib)")
    args = ap.parse_args(argv)
    for flag, path in (("--json", args.json), ("--plot", args.plot)):
        folder = os.path.dirname(os.path.abspath(path)) if path else None
        if folder and not os.path.isdir(folder):   # found before the run, not after it
            ap.error(f"{flag} {path}: the folder {folder} does not exist")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            ap.error("--plot needs matplotlib (pip install matplotlib)")
    only = args.only
    fastfc.set_num_threads(args.threads)
    torch = _torch()
    if torch is not None:
        torch.set_num_threads(args.threads)
    fastfc.show_config()
    peak1 = fastfc._core.fma_peak_gflops(np.float32)
    print(f"  FMA peak (fp32): {peak1:.1f} GFLOP/s per thread, ~{peak1 * args.threads:.0f} on "
          f"{args.threads} threads (fp64: half)")
    print(f"  numpy {np.__version__} (its BLAS picks its own threads), torch "
          f"{torch.__version__ if torch else 'not installed'}, {platform.processor() or platform.machine()}")
    shapes = QUICK_SHAPES if args.quick else FORWARD_SHAPES
    results = []
    if "forward" in only:
        _gemm_table("forward float32: linear + bias + relu", forward_case, shapes, 2, args, results)
    if "backward" in only:
        _gemm_table("backward float32: dX, dW, db with the relu gradient (4mnk flops)",
                    backward_case, shapes, 4, args, results)
    if "float64" in only:
        _gemm_table("forward float64: linear + bias + relu",
                    lambda m, k, n: forward_case(m, k, n, np.float64), QUICK_SHAPES[:5], 2, args,
                    results)
    if "small" in only:
        _small_batch_table(args, results)
    if "bf16" in only:
        from fastfc.bench_inference import bf16_table
        bf16_table(args, results)
    if "mlp" in only:
        from fastfc.bench_inference import mlp_table
        mlp_table(args, results)
    if "gemm" in only:
        _single_thread_gemm(args, results)
    if "dropout" in only:
        _dropout_table(args, results)
    if "train" in only:
        _train_table(args, results)
    if "interleaved" in only:
        _interleaved_table(args, results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%d %H:%M:%S"), "config": fastfc.get_config(),
                       "threads": args.threads, "fma_peak_fp32_per_thread": peak1,
                       "results": results}, f, indent=1, default=str)
        print(f"\nwrote {args.json}")
    if args.plot:
        from fastfc.bench_inference import plot
        plot(results, args.plot)
    return 0
