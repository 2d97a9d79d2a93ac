"""fastfc.dask on a LocalCluster against the local model: `python bench/dask_scaling.py`.

For a 784-128-64-10 MLP and a 4096-wide one (784-4096-4096-10): inference rows/s
(predict_proba) and the time of a training epoch, locally (fastfc on 1 and on all
threads) and on LocalClusters of 1 and 2 worker processes (one thread each), and the
share of a step a worker does not spend computing (exchanging gradients, waiting for the
scheduler), from Dask's task stream. Results go to docs/distributed.md. Timings on a
shared machine are noisy: the best of `--repeats` runs is reported.
"""
import argparse
import os
import time
import warnings

import numpy as np

import fastfc
import fastfc.dask as fdask

warnings.filterwarnings("ignore", message="Sending large graph")   # X embedded by from_array

MODELS = {"784-128-64-10": [784, 128, 64, 10], "784-4096-4096-10": [784, 4096, 4096, 10]}


def mlp(widths, seed=0):
    layers = [fastfc.Dense(a, b, activation="relu") for a, b in zip(widths[:-2], widths[1:-1])]
    layers.append(fastfc.Dense(widths[-2], widths[-1]))
    return fastfc.Sequential(layers, optimizer=fastfc.optim.Adam(lr=1e-3), seed=seed)


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def local_row(name, widths, X, y, batch, repeats, threads):
    fastfc.set_num_threads(threads)
    model = mlp(widths)
    t_inf = best(lambda: model.predict_proba(X), repeats)
    t_fit = best(lambda: model.fit(X[:len(y)], y, epochs=1, batch_size=batch, verbose=0),
                 repeats)
    return {"model": name, "where": f"local, {threads} thread(s)",
            "rows/s": len(X) / t_inf, "epoch s": t_fit, "not computing": None,
            "one row s": best(lambda: model.predict_proba(X[:1]), repeats)}


def dask_rows(name, widths, X, y, batch, repeats, n_workers, sync_every):
    import dask.array as da
    from distributed import Client, LocalCluster, get_task_stream
    rows = []
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        model = mlp(widths)
        Xd = da.from_array(X, chunks=(-(-len(X) // (4 * n_workers)), -1)).persist()
        Xf = da.from_array(X[:len(y)], chunks=(-(-len(y) // n_workers), -1)).persist()
        yd = da.from_array(y, chunks=Xf.chunks[0]).persist()
        fdask.predict_proba(model, Xd[:64]).compute()   # workers warm, model importable
        # a call sends the model (scatter, then each worker thread builds it once): the
        # time of a one-row call is that latency
        t_one = best(lambda: fdask.predict_proba(model, Xd[:1]).compute(), repeats)
        t_inf = best(lambda: fdask.predict_proba(model, Xd).compute(), repeats)
        for k in sync_every:
            shares, times = [], []
            for _ in range(repeats):
                m = mlp(widths)
                with get_task_stream(client) as ts:
                    t0 = time.perf_counter()
                    fdask.fit(m, Xf, yd, epochs=1, batch_size=batch, shuffle=False,
                              sync_every=k, client=client)
                    wall = time.perf_counter() - t0
                busy = {}
                rounds = [t for t in ts.data if "fastfc-round" in str(t["key"])]
                first = min(s["start"] for t in rounds for s in t["startstops"])
                last = max(s["stop"] for t in rounds for s in t["startstops"])
                for t in rounds:
                    for s in t["startstops"]:
                        if s["action"] == "compute":
                            busy[t["worker"]] = busy.get(t["worker"], 0) + s["stop"] - s["start"]
                shares.append(1 - np.mean(list(busy.values())) / (last - first))
                times.append(wall)
            i = int(np.argmin(times))
            rows.append({"model": name, "where": f"dask, {n_workers} worker(s), sync_every={k}",
                         "rows/s": len(X) / t_inf if k == sync_every[0] else None,
                         "one row s": t_one if k == sync_every[0] else None,
                         "epoch s": times[i], "not computing": shares[i]})
    return rows


def table(rows):
    head = ("| model | where | inference rows/s | one-row call s | fit epoch s | "
            "step share not computing |")
    lines = [head, "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        rps = "" if r["rows/s"] is None else f"{r['rows/s']:,.0f}"
        share = "" if r["not computing"] is None else f"{100 * r['not computing']:.0f} %"
        one = "" if r["one row s"] is None else f"{r['one row s']:.3f}"
        lines.append(f"| {r['model']} | {r['where']} | {rps} | {one} | {r['epoch s']:.2f} | "
                     f"{share} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--only", choices=list(MODELS), help="one model")
    a = ap.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    rng = np.random.default_rng(0)
    rows = []
    for name, widths in MODELS.items():
        if a.only and name != a.only:
            continue
        wide = widths[1] >= 4096
        n_inf, n_fit = (4096, 2048) if wide else (32768, 16384)
        X = rng.standard_normal((n_inf, widths[0])).astype(np.float32)
        y = rng.integers(0, widths[-1], n_fit)
        for threads in sorted({1, cores}):
            rows.append(local_row(name, widths, X, y, a.batch, a.repeats, threads))
        for n_workers in (1, 2):
            rows += dask_rows(name, widths, X, y, a.batch, a.repeats, n_workers,
                              (1,) if n_workers == 1 else (1, 4))
        params = mlp(widths)._theta.size
        print(f"{name}: {params:,} parameters = {4 * params / 1e6:.2f} MB fp32 sent by each "
              f"worker a step; {n_fit} rows in batches of {a.batch} "
              f"({-(-n_fit // a.batch)} steps an epoch)", flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
