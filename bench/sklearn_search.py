"""The seeds' hyper-parameter search, run twice with one import changed: a
RandomizedSearchCV over a log-uniform ``alpha`` of an MLPClassifier on scikit-learn's
digits, with ``sklearn.neural_network`` and with ``fastfc.sklearn``.

    python bench/sklearn_search.py [--n-iter 8] [--cv 3] [--threads 1] [--rounds 1]

Prints each library's test accuracy (of the refitted best model) and search time, and
scikit-learn's time over fastfc's. The libraries alternate in one process (rounds of
fastfc then scikit-learn; medians over rounds), both on --threads threads (BLAS through
threadpoolctl, fastfc through set_num_threads). Not a timed test: the machine's load moves
the figures; compare runs.
"""
import argparse
import importlib
import time
import warnings

import numpy as np
from scipy.stats import loguniform
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import RandomizedSearchCV, train_test_split


def search(module, X_train, y_train, X_test, y_test, n_iter, cv):
    """The search's code; only `module` (the import) differs between the two runs."""
    MLPClassifier = importlib.import_module(module).MLPClassifier
    est = MLPClassifier(hidden_layer_sizes=(100,), max_iter=200, random_state=0)
    searcher = RandomizedSearchCV(est, {"alpha": loguniform(1e-5, 1e-1)}, n_iter=n_iter,
                                  cv=cv, random_state=0)
    t0 = time.perf_counter()
    searcher.fit(X_train, y_train)
    seconds = time.perf_counter() - t0
    return searcher.score(X_test, y_test), seconds, searcher.best_params_["alpha"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-iter", type=int, default=8)
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    import fastfc
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.25,
                                                        stratify=y, random_state=0)
    fastfc.set_num_threads(args.threads)
    results = {"fastfc.sklearn": [], "sklearn.neural_network": []}
    with threadpool_limits(limits=args.threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(args.rounds):
            for module in results:
                results[module].append(search(module, X_train, y_train, X_test, y_test,
                                              args.n_iter, args.cv))
    print(f"RandomizedSearchCV(alpha ~ loguniform(1e-5, 1e-1), n_iter={args.n_iter}, "
          f"cv={args.cv}) on digits ({len(y_train)} train, {len(y_test)} test), "
          f"{args.threads} thread(s), {args.rounds} round(s)")
    medians = {}
    for module, runs in results.items():
        acc, sec = runs[0][0], float(np.median([r[1] for r in runs]))
        medians[module] = (acc, sec)
        print(f"  {module:24s} accuracy {acc:.4f}  best alpha {runs[0][2]:.2e}  "
              f"time {sec:7.2f} s  (rounds: {', '.join(f'{r[1]:.2f}' for r in runs)})")
    (a_f, t_f), (a_s, t_s) = medians["fastfc.sklearn"], medians["sklearn.neural_network"]
    print(f"  accuracy difference {a_f - a_s:+.4f}, speed ratio (sklearn time / fastfc "
          f"time) {t_s / t_f:.2f}x")


if __name__ == "__main__":
    main()
