"""Small-batch forward against the machine's read bandwidth, thread by thread: where the
streamed kernel stands (fp32 and bf16 weights, and W^T: the transposed view of an (out, in)
array, PyTorch's layout) beside NumPy's gemv/gemm, in one process, alternating blocks.
Run: PYTHONPATH=src python bench/stream_bandwidth.py [threads...]"""
import argparse

import numpy as np

import fastfc
from fastfc.bench import compare, read_bandwidth

SHAPES = [(1, 4096, 4096), (4, 4096, 4096), (16, 4096, 4096), (1, 25088, 4096),
          (8, 25088, 4096), (1, 784, 128), (1, 1024, 1024)]


def main(threads):
    for th in threads:
        fastfc.set_num_threads(th)
        bw = read_bandwidth(th)
        print(f"threads {th}: read bandwidth {bw / 1e9:.1f} GB/s")
        for m, k, n in SHAPES:
            rng = np.random.default_rng(0)
            x = rng.standard_normal((m, k)).astype(np.float32)
            w = rng.standard_normal((k, n)).astype(np.float32)
            pw, wt = fastfc.pack(w, "bfloat16"), np.ascontiguousarray(w.T).T
            out = np.empty((m, n), np.float32)
            t = compare({"fp32": lambda: fastfc.linear(x, w, out=out),
                         "bf16": lambda: fastfc.linear(x, pw, out=out),
                         "numpy": lambda: np.matmul(x, w, out=out),
                         "fp32 W^T": lambda: fastfc.linear(x, wt, out=out),
                         "numpy W^T": lambda: np.matmul(x, wt, out=out)}, rounds=5, pause=0.1)
            print(f"  {m}x{k}x{n}: fp32 {4 * k * n / t['fp32'] / 1e9:6.1f} GB/s "
                  f"({4 * k * n / t['fp32'] / bw:4.0%})  bf16 {2 * k * n / t['bf16'] / 1e9:6.1f} "
                  f"GB/s ({2 * k * n / t['bf16'] / bw:4.0%}, {t['fp32'] / t['bf16']:.2f}x fp32)"
                  f"  numpy {4 * k * n / t['numpy'] / 1e9:6.1f} GB/s  fp32 vs numpy "
                  f"{t['numpy'] / t['fp32']:.2f}x\n      W^T: fp32 "
                  f"{4 * k * n / t['fp32 W^T'] / 1e9:6.1f} GB/s  numpy "
                  f"{4 * k * n / t['numpy W^T'] / 1e9:6.1f} GB/s  fp32 vs numpy "
                  f"{t['numpy W^T'] / t['fp32 W^T']:.2f}x", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("threads", type=int, nargs="*", default=[1, 2],
                    help="thread counts to measure (default 1 2)")
    main(ap.parse_args().threads)
