"""The inference tables of `python -m fastfc bench`: bfloat16 weights at small batch, and
whole-MLP inference against ONNX Runtime (optional: the `bench` extra); and `--plot`.

Timing as the rest of the bench (bench.compare: blocks of calls per library, alternating,
with a pause between libraries). Before any timing, each case checks that the libraries
agree on its inputs."""
import numpy as np

import fastfc
from fastfc import reference as ref
from fastfc.bench import (SMALL_BATCHES, QUICK_SMALL_WEIGHTS, SMALL_WEIGHTS, compare, geomean,
                          l3_bytes, read_bandwidth)

MLPS = {"mlp 784-128-64-10": [784, 128, 64, 10],
        "ffn 768-3072-768": [768, 3072, 768],
        "vgg head 25088-4096-4096-1000": [25088, 4096, 4096, 1000]}
MLP_BATCHES = [1, 8, 64, 256]
QUICK_MLPS = ["mlp 784-128-64-10", "ffn 768-3072-768"]
QUICK_MLP_BATCHES = [1, 64]


def bf16_table(args, out):
    """W in bfloat16 (fastfc.pack) at small batches and at 64 rows: ratios to NumPy fp32
    and to the same W packed in fp32, and weight bytes per second against the read
    bandwidth measured right before each W past the L3. The targets: m <= 8 with W past the
    L3 against NumPy; elsewhere (more rows, or W in cache) not slower than fp32 packed."""
    bw = read_bandwidth(args.threads)
    l3 = l3_bytes()
    print(f"\nbfloat16 weights (fastfc.pack(w, 'bfloat16')), float32 x, linear + bias + relu; "
          f"read bandwidth {bw / 1e9:.1f} GB/s (again before each W past the L3)")
    print(f"{'shape m x k x n':>18}{'bf16 GB/s':>11}{'vs numpy':>10}{'vs fp32 packed':>15}"
          f"{'of bandwidth':>14}{'read GB/s':>11}")
    rows = []
    for k, n in QUICK_SMALL_WEIGHTS if args.quick else SMALL_WEIGHTS:
        big = l3 is not None and 4 * k * n > l3  # the fp32 W past the L3
        if big:
            bw = read_bandwidth(args.threads)
        rng = np.random.default_rng(0)
        w = rng.standard_normal((k, n)).astype(np.float32)
        pw, p32 = fastfc.pack(w, "bfloat16"), fastfc.pack(w)
        b = rng.standard_normal(n).astype(np.float32)
        for m in SMALL_BATCHES + [64]:
            x = rng.standard_normal((m, k)).astype(np.float32)
            got = fastfc.linear(x, pw, b)
            err = np.abs(got - (x.astype(np.float64) @ w + b))
            if not (err <= ref.bf16_bound(x, w, b)).all():
                raise AssertionError(f"bf16 {m}x{k}x{n}: error past the documented bound")
            fns = {"bf16": lambda: fastfc.linear(x, pw, b, activation="relu"),
                   "fp32": lambda: fastfc.linear(x, p32, b, activation="relu"),
                   "numpy": lambda: np.maximum(x @ w + b, 0)}
            t = compare(fns, rounds=args.rounds, pause=args.pause)
            wbytes = 2 * k * n
            frac = wbytes / t["bf16"] / bw if big and m <= 8 else None
            r = {"numpy": t["numpy"] / t["bf16"], "fastfc_fp32_packed": t["fp32"] / t["bf16"]}
            rows.append({"shape": [m, k, n], "seconds": t, "ratio": r,
                         "bandwidth_fraction": frac, "read_bandwidth": bw if frac else None})
            print(f"{f'{m}x{k}x{n}':>18}{wbytes / t['bf16'] / 1e9:11.1f}{r['numpy']:9.2f}x"
                  f"{r['fastfc_fp32_packed']:14.2f}x"
                  + (f"{100 * frac:13.0f}%{bw / 1e9:11.1f}" if frac else ""), flush=True)
    past = [r["ratio"]["numpy"] for r in rows if r["bandwidth_fraction"] is not None]
    rest = [r["ratio"]["fastfc_fp32_packed"] for r in rows if r["bandwidth_fraction"] is None]
    summary = {"geomean": geomean([r["ratio"]["numpy"] for r in rows]),
               "min": min(r["ratio"]["numpy"] for r in rows),
               "geomean_beyond_l3": geomean(past) if past else None,
               "min_beyond_l3": min(past) if past else None,
               "elsewhere_geomean_vs_fp32_packed": geomean(rest),
               "elsewhere_min_vs_fp32_packed": min(rest)}
    print(f"{'geomean':>18}{'':11}{summary['geomean']:9.2f}x   (m <= 8, W past the L3: "
          f"{summary['geomean_beyond_l3'] or float('nan'):.2f}x, min "
          f"{summary['min_beyond_l3'] or float('nan'):.2f}x; elsewhere against fp32 packed: "
          f"{summary['elsewhere_geomean_vs_fp32_packed']:.2f}x, min "
          f"{summary['elsewhere_min_vs_fp32_packed']:.2f}x)")
    out.append({"table": "bf16", "read_bandwidth": bw, "rows": rows, "summary": summary})


def _mlp(sizes, seed=0):
    layers = [fastfc.Dense(a, b, activation="relu" if i < len(sizes) - 2 else None)
              for i, (a, b) in enumerate(zip(sizes, sizes[1:]))]
    return fastfc.Sequential(layers, loss="mse", seed=seed)


def _ort_session(model, threads):
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(fastfc.to_onnx(model), opts, providers=["CPUExecutionProvider"])


def mlp_table(args, out):
    """Whole-MLP inference (Dense + ReLU stacks): fastfc's frozen model (fp32 and bf16)
    against ONNX Runtime (when installed) and NumPy, per batch size."""
    print("\nMLP inference (forward of Dense + ReLU): frozen fastfc model vs ONNX Runtime "
          "and NumPy")
    print(f"{'model':>30}{'batch':>7}{'fastfc ms':>11}{'vs ort':>9}{'bf16 vs ort':>13}"
          f"{'vs numpy':>10}")
    rows = []
    for name in QUICK_MLPS if args.quick else MLPS:
        model = _mlp(MLPS[name])
        frozen, frozen16 = model.freeze(), model.freeze("bfloat16")
        ort = _ort_session(model, args.threads)
        ws = [(l.params["W"], l.params["b"], l.activation) for l in model.layers]

        def numpy_forward(x):
            for w, b, act in ws:
                x = x @ w + b
                if act:
                    x = np.maximum(x, 0)
            return x
        for m in QUICK_MLP_BATCHES if args.quick else MLP_BATCHES:
            x = np.random.default_rng(m).standard_normal((m, MLPS[name][0])).astype(np.float32)
            want = numpy_forward(x)
            scale = np.abs(want).max() + 1
            got = frozen.forward(x)
            if not np.allclose(got, want, rtol=1e-4, atol=1e-4 * scale):
                raise AssertionError(f"{name} batch {m}: fastfc disagrees with NumPy")
            fns = {"fastfc": lambda: frozen.forward(x), "bf16": lambda: frozen16.forward(x),
                   "numpy": lambda: numpy_forward(x)}
            if ort is not None:
                ort_out = ort.run(None, {"input": x})[0]
                if not np.allclose(ort_out, want, rtol=1e-4, atol=1e-4 * scale):
                    raise AssertionError(f"{name} batch {m}: ONNX Runtime disagrees with NumPy")
                fns["ort"] = lambda: ort.run(None, {"input": x})
            t = compare(fns, rounds=args.rounds, pause=args.pause)
            r = {"numpy": t["numpy"] / t["fastfc"]}
            if ort is not None:
                r["ort"] = t["ort"] / t["fastfc"]
                r["ort_bf16"] = t["ort"] / t["bf16"]
            rows.append({"model": name, "batch": m, "seconds": t, "ratio": r})
            print(f"{name:>30}{m:7d}{1e3 * t['fastfc']:11.3f}"
                  + (f"{r['ort']:8.2f}x{r['ort_bf16']:12.2f}x" if ort else f"{'-':>9}{'-':>13}")
                  + f"{r['numpy']:9.2f}x", flush=True)
    summary = {"numpy": {"geomean": geomean([r["ratio"]["numpy"] for r in rows]),
                         "min": min(r["ratio"]["numpy"] for r in rows)}}
    if rows and "ort" in rows[0]["ratio"]:
        summary["ort"] = {"geomean": geomean([r["ratio"]["ort"] for r in rows]),
                          "min": min(r["ratio"]["ort"] for r in rows)}
        print(f"{'geomean vs ort':>30}{'':18}{summary['ort']['geomean']:8.2f}x  (min "
              f"{summary['ort']['min']:.2f}x)")
    else:
        print("  onnxruntime is not installed (pip install 'fastfc[bench]'): no ORT column")
    out.append({"table": "mlp inference", "rows": rows, "summary": summary})


def plot(results, path):
    """The speed ratio of every row of every table, one panel per table (matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib (pip install matplotlib)") from None
    tables = [t for t in results if t.get("rows") and "ratio" in t["rows"][0]]
    if not tables:
        raise SystemExit("--plot: no table with ratios was run")
    fig, axes = plt.subplots(len(tables), 1, figsize=(10, 3.2 * len(tables)), squeeze=False)
    for ax, table in zip(axes[:, 0], tables):
        rows = table["rows"]
        labels = [("x".join(map(str, r["shape"])) if "shape" in r else
                   f"{r['model'].split()[0]} b{r['batch']}") for r in rows]
        libs = list(rows[0]["ratio"])
        width = 0.8 / len(libs)
        for j, lib in enumerate(libs):
            ax.bar(np.arange(len(rows)) + j * width, [r["ratio"].get(lib, np.nan) for r in rows],
                   width, label=f"vs {lib}")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(np.arange(len(rows)) + 0.4 - width / 2)
        ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("speed-up (other / fastfc)")
        ax.set_title(table["table"])
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")
