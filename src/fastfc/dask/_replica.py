"""The worker side of data-parallel training: one replica of the model per worker, its
rows, and the tasks a fit runs on it (start, rounds of steps, epoch ends, the result).

A replica lives in this module's registry of the worker process, keyed by the fit and
the worker (in-process workers share one registry), from the start task to the result
task: tasks pinned to the worker find it there. A worker that dies loses it; the driver
notices the worker leaving (see _fit.py).
"""
import numpy as np

import fastfc
from fastfc import layers as layers_mod
from fastfc.dask._shipping import model_from_bytes, task_threads
from fastfc.model.inputs import as_2d_float

_REPLICAS = {}   # {fit key: {worker address: Replica}}


class RowOffsetDropout(layers_mod.Layer):
    """A Dropout that draws the mask of rows [row0, row0 + n) of a global batch of
    `rows` rows: the elements (r, f) of the local fit's batch are Philox words r*F + f of
    stream `calls`, so this draws the whole batch's stream (fastfc.dropout on a
    zero-padded global batch) and keeps this worker's rows: masks and values are those of
    the local fit, bit for bit."""

    def __init__(self, dropout):
        super().__init__()
        self.p, self.seed, self.calls = dropout.p, dropout.seed, dropout.calls
        self.dtype = dropout.dtype
        self.row0, self.rows = 0, None
        self._mask = None

    def output_shape(self, in_shape):
        return in_shape

    def forward(self, x, training=False):
        if not training or self.p == 0:
            self._mask = None
            return x
        n = x.shape[0]
        full = np.zeros((self.rows,) + x.shape[1:], self.dtype)
        full[self.row0:self.row0 + n] = x
        y, mask = fastfc.dropout(full, self.p, seed=self.seed, stream=self.calls)
        self.calls += 1
        self._mask = mask[self.row0:self.row0 + n]
        return y[self.row0:self.row0 + n]

    def backward(self, grad):
        if self._mask is None:
            return grad
        return fastfc.dropout_backward(grad, self._mask, self.p)


class Replica:
    """A worker's model, its rows (its partition) and the sums of the epoch's metrics."""

    def __init__(self, model_data, parts, mode):
        self.model = model = model_from_bytes(model_data)
        for i, layer in enumerate(model.layers):
            if isinstance(layer, layers_mod.Dropout):
                model.layers[i] = RowOffsetDropout(layer)
        model._plans.clear()   # the fused plan draws masks from row 0: none with dropout
        self.dropouts = [l for l in model.layers if isinstance(l, RowOffsetDropout)]
        xs = [np.asarray(x) for x, _ in parts]
        ys = [np.asarray(y) for _, y in parts]
        shape = tuple(model.input_shape)
        X = np.concatenate(xs) if xs else np.empty(0)
        # the checks of model.fit (dtype, shape, NaN/Inf) on rows there are: a partition
        # of empty chunks (a filtered DataFrame's) holds none and trains on nothing
        self.X = as_2d_float(X, "X", model.dtype, shape) if len(X) else \
            np.empty((0,) + shape, model.dtype)
        self.y = np.concatenate(ys) if ys else None
        if self.y is not None:
            self.y = model.loss.check_targets(self.y, model.n_outputs, self.X.shape[0])
        self.mode = mode    # "gradients" (sync_every=1) or "parameters" (local SGD)
        self.order = np.arange(self.X.shape[0])
        self.loss_sum, self.correct, self.seen = 0.0, 0, 0
        self._buffers, self._round = [], 0

    def absorb(self, last):
        """Apply the mean of the workers' last results: the averaged gradient (one
        optimizer step, the same on every replica) or the averaged parameters."""
        if not last:
            return
        model = self.model
        target = model._dtheta if self.mode == "gradients" else model._theta
        weighted_mean(last, target, self._buffer(0))
        if self.mode == "gradients":
            model._apply_gradients()

    def _buffer(self, i):
        """Scratch vector i, allocated once: 80 MB a step of fresh memory (page faults)
        cost as much as a step's compute for a 20 M-parameter model."""
        while len(self._buffers) <= i:
            self._buffers.append(np.empty_like(self.model._theta))
        return self._buffers[i]

    def result(self, source):
        """A copy of `source` for the round's result, in a ring of three buffers: a
        result is read by the next round of every worker and by nothing after, and a
        worker starts round s + 3 only after all workers finished round s + 1."""
        self._round += 1
        out = self._buffer(1 + self._round % 3)
        out[...] = source
        return out

    def step(self, lo, hi, row0, rows):
        """The gradients of this worker's rows [lo, hi) of its epoch order, which are
        rows [row0, row0 + hi - lo) of a global batch of `rows`; the number of rows."""
        model, n = self.model, max(0, hi - lo)
        for d in self.dropouts:
            d.row0, d.rows = row0, rows
        if n == 0:
            model._dtheta[...] = 0
            for d in self.dropouts:   # the local fit's streams advance once per batch
                d.calls += d.p != 0
            return 0
        idx = self.order[lo:hi]
        loss, right = model._gradients(self.X[idx], self.y[idx], True)
        self.loss_sum += float(loss) * n
        self.correct += int(right)
        self.seen += n
        return n


def _worker():
    """This task's worker: in-process workers share _REPLICAS, so it keys each one's."""
    from distributed import get_worker
    return get_worker().address


def start(key, model_data, mode, *parts):
    """Build this worker's replica from the model's bytes and its (X, y) chunks."""
    task_threads(whole_worker=True)
    rep = Replica(model_data, list(zip(parts[::2], parts[1::2])), mode)
    _REPLICAS.setdefault(key, {})[_worker()] = rep   # setdefault: atomic across threads
    return rep.X.shape[0]


def _replica(key):
    try:
        return _REPLICAS[key][_worker()]
    except KeyError:
        raise RuntimeError("fastfc.dask.fit: this worker holds no replica of the model "
                           "(it restarted during the fit)") from None


def run_round(key, epoch_start, steps, *last):
    """Absorb the rows-weighted mean of the workers' last results (`last`: (vector,
    rows) from every worker, the same on each replica), then run `steps` ((lo, hi, row0,
    rows) each): with gradient averaging one step whose gradient is returned, with
    parameter averaging local steps (each its own optimizer step) and the parameters.
    Returns (vector, rows)."""
    task_threads(whole_worker=True)
    rep = _replica(key)
    rep.absorb(last)
    if epoch_start is not None:
        epoch, seed = epoch_start
        rep.model.optimizer.start_epoch(epoch)
        rep.loss_sum, rep.correct, rep.seen = 0.0, 0, 0
        n = rep.X.shape[0]
        rep.order = (np.random.default_rng(seed).permutation(n) if seed is not None
                     else np.arange(n))
    total = 0
    for lo, hi, row0, rows in steps:
        got = rep.step(lo, hi, row0, rows)
        total += got
        if rep.mode == "parameters" and got:
            rep.model._apply_gradients()
    source = rep.model._dtheta if rep.mode == "gradients" else rep.model._theta
    return rep.result(source), total


def weighted_mean(parts, out, scratch):
    """The rows-weighted mean of the workers' vectors into `out`, in worker order (every
    replica computes it from the same parts: the same bits everywhere)."""
    total = sum(rows for _, rows in parts)
    first = True
    for vec, rows in parts:
        if not rows:
            continue
        weight = out.dtype.type(rows / total)
        if first:
            np.multiply(vec, weight, out=out)
            first = False
        else:
            np.multiply(vec, weight, out=scratch)
            out += scratch


def end_epoch(key, want_state, *last):
    """Absorb the epoch's last results; this worker's (loss sum, correct, rows) and, when
    asked, the training state."""
    rep = _replica(key)
    rep.absorb(last)
    return (rep.loss_sum, rep.correct, rep.seen), (state(rep) if want_state else None)


def state(rep):
    """What the caller's model takes at the end: weights, optimizer, dropout streams."""
    opt = rep.model.optimizer
    return {"theta": rep.model._theta.copy(), "opt_state": opt.state, "opt_t": opt.t,
            "opt_lr": opt.lr, "dropout_calls": [getattr(l, "calls", None)
                                                for l in rep.model.layers]}


def forget(key):
    """Drop this process's replicas of the fit (the fit ended): every worker's, for
    workers that share the process."""
    _REPLICAS.pop(key, None)
