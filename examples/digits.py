"""Train a 64-128-64-10 MLP with dropout on scikit-learn's digits (shipped with
scikit-learn, no download) and compare with scikit-learn's MLPClassifier.

    python examples/digits.py [--epochs 40] [--batch-size 32] [--seeds 0 1 2]
"""
import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

import fastfc


def data(seed):
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
    scaler = StandardScaler().fit(Xtr)
    return (scaler.transform(Xtr).astype(np.float32), scaler.transform(Xte).astype(np.float32),
            ytr, yte)


def train_fastfc(Xtr, ytr, Xte, yte, seed, epochs, batch_size):
    model = fastfc.Sequential(
        [fastfc.Dense(64, 128, activation="relu"), fastfc.Dropout(0.2),
         fastfc.Dense(128, 64, activation="relu"), fastfc.Dropout(0.2),
         fastfc.Dense(64, 10)],
        loss="softmax_cross_entropy", optimizer=fastfc.optim.Adam(lr=1e-3), seed=seed)
    t0 = time.perf_counter()
    model.fit(Xtr, ytr, epochs=epochs, batch_size=batch_size, verbose=0)
    fit_time = time.perf_counter() - t0
    return model.evaluate(Xte, yte)["accuracy"], fit_time, model


def train_sklearn(Xtr, ytr, Xte, yte, seed, epochs, batch_size):
    clf = MLPClassifier(hidden_layer_sizes=(128, 64), solver="adam", learning_rate_init=1e-3,
                        batch_size=batch_size, max_iter=epochs, alpha=0.0, shuffle=True,
                        early_stopping=False, n_iter_no_change=epochs + 1, tol=0.0,
                        random_state=seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(Xtr, ytr)
    fit_time = time.perf_counter() - t0
    return clf.score(Xte, yte), fit_time


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        fastfc.set_num_threads(args.threads)
    print(f"digits: 64-128-64-10 ReLU MLP, dropout 0.2, Adam 1e-3, {args.epochs} epochs, "
          f"batch {args.batch_size}, fastfc threads {fastfc.get_num_threads()}\n")
    print(f"{'seed':>4} {'fastfc acc':>10} {'fit s':>7} {'sklearn acc':>11} {'fit s':>7} "
          f"{'speed-up':>8}")
    rows = []
    for seed in args.seeds:
        Xtr, Xte, ytr, yte = data(seed)
        acc, t, model = train_fastfc(Xtr, ytr, Xte, yte, seed, args.epochs, args.batch_size)
        sacc, st = train_sklearn(Xtr, ytr, Xte, yte, seed, args.epochs, args.batch_size)
        rows.append((acc, t, sacc, st))
        print(f"{seed:>4} {acc:10.4f} {t:7.3f} {sacc:11.4f} {st:7.3f} {st / t:7.1f}x")
    acc, t, sacc, st = (float(np.median(c)) for c in zip(*rows))
    print(f"\nmedian: fastfc test accuracy {acc:.4f} (target >= 0.97), fit {t:.3f} s; "
          f"scikit-learn {sacc:.4f}, fit {st:.3f} s; fastfc is {st / t:.1f}x faster "
          f"(target >= 3x)")
    return 0 if acc >= 0.97 else 1


if __name__ == "__main__":
    raise SystemExit(main())
