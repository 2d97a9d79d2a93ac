"""Synchronous data-parallel training on a Dask cluster (the driver's side).

Each worker holds a replica of the model and a contiguous group of X's row chunks (its
partition). A step takes batch_size / n_workers consecutive rows of every partition; the
workers' gradients are averaged, weighted by their rows, in one reduce task, and every
replica applies that same average with its own optimizer. The rounds of an epoch are
submitted at once as a chain of tasks (round -> reduce -> round ...), so the scheduler
runs them without a round trip to the driver per step; the driver only watches them.
"""
import collections
import math
import time
import uuid

import numpy as np

from fastfc import layers as layers_mod
from fastfc._checks import flag, integer, positive
from fastfc.dask import _replica
from fastfc.dask._inference import check_model
from fastfc.dask._inputs import as_row_chunked, targets_like
from fastfc.dask._shipping import model_bytes, model_from_bytes
from fastfc.model.inputs import as_2d_float


_AHEAD = 4   # rounds submitted beyond the one the driver waits for


class DistributedFitError(RuntimeError):
    """A worker left, a task failed or a step timed out during ``fastfc.dask.fit``."""


def _check_target_shape(model, y):
    """y's width and dtype against the loss on the client, before any worker starts (a
    worker's error would quote its partition's rows): checked on no rows, and on a
    zero-stride view of y's whole shape for the message (the losses check shapes before
    they copy)."""
    try:
        model.loss.check_targets(np.zeros((0,) + y.shape[1:], y.dtype), model.n_outputs, 0)
    except ValueError:
        whole = np.broadcast_to(np.zeros((), y.dtype), y.shape)
        model.loss.check_targets(whole, model.n_outputs, y.shape[0])
        raise


def fit(model, X, y, epochs, batch_size, sync_every=1, shuffle=True, seed=None, client=None,
        validation_data=None, callbacks=None, step_timeout=300.0):
    """Train `model` on a Dask cluster, data-parallel and synchronous.

    Every worker holds a replica of the model and a contiguous group of X's row chunks
    (its partition; chunks already on a worker stay there when the grouping allows).
    A step takes ``batch_size / n_workers`` consecutive rows of every partition, the
    workers' gradients are averaged weighted by their rows (an all-reduce through Dask)
    and every replica applies the same optimizer step. With ``sync_every=1`` and
    ``shuffle=False`` this is the local ``model.fit`` on the rows taken in that order
    (batch s = rows [s*b, (s+1)*b) of partition 0, then of partition 1, ...), dropout
    masks included; the weights agree up to floating-point rounding.

    Parameters
    ----------
    model : fastfc.Sequential
        Without BatchNorm (its batch statistics would differ per worker). It keeps its
        weights when the fit fails; on success it ends with the trained weights, the
        optimizer's state (of the first worker's replica) and the dropout streams.
    X : dask.array.Array, dask DataFrame or array-like
        Chunks hold whole rows (``X.rechunk({1: -1})`` otherwise); a NumPy array, or a
        dask array of fewer row chunks than workers, is cut into one chunk per worker.
    y : dask.array.Array or array-like
        Targets with X's row chunks.
    epochs : int
    batch_size : int
        The global batch; divisible by the number of workers.
    sync_every : int, default 1
        1: gradients are averaged every step (exactly the local fit). k > 1: every replica
        takes k local steps with its own gradients, then the parameters are averaged
        (weighted by the rows each worker took); each replica keeps its own optimizer
        state (local SGD: k times fewer exchanges, a different trajectory).
    shuffle : bool, default True
        Each epoch, every worker permutes its own partition (rows never move between
        workers) with a generator seeded by (seed, epoch, partition).
    seed : int, optional
        Makes the shuffles reproducible (a random one when None).
    client : distributed.Client, optional
        The default client when None.
    validation_data : (X_val, y_val), optional
        Evaluated in this process after each epoch (a dask X_val is computed once here).
    callbacks : list of fastfc.callbacks.Callback, optional
        Their ``set_model``, ``on_train_begin``, ``on_epoch_begin``, ``on_epoch_end`` and
        ``on_train_end`` run in this process (the batch hooks do not: steps run on the
        workers). The model they see is a copy here with the weights of each epoch's end;
        setting its ``stop_training`` stops the fit, and weights they set in it (e.g.
        the best ones restored) are the caller's model's at the end.
    step_timeout : float, default 300
        Seconds the driver waits for a step (a round of `sync_every` steps) before the
        fit fails: a worker that hangs. A worker that leaves is noticed within a second.

    Returns
    -------
    fastfc.History
        ``loss`` (mean over the epoch's rows, each before its step), ``accuracy`` for
        classifiers, ``val_loss`` / ``val_accuracy`` with validation data.

    Raises
    ------
    ValueError, TypeError
        Bad arguments, or X or y that ``model.fit`` would refuse (NaN or Inf in X,
        labels out of range), found when the workers read their partitions.
    DistributedFitError
        A worker left the cluster (its nanny may restart it, but its replica is gone), a
        task failed, or no step finished within `step_timeout`; the message names the
        epoch and the step.
    """
    from distributed import default_client

    from fastfc.model import History
    check_model(model, "fit", frozen=False)
    client = client if client is not None else default_client()
    bn = [l for l in model.layers if isinstance(l, layers_mod.BatchNorm)]
    if bn:
        raise ValueError(f"fastfc.dask.fit: {bn[0].describe()} is not supported: its batch "
                         f"statistics would be each worker's, not the batch's; train without "
                         f"BatchNorm or with model.fit")
    X = as_row_chunked(X, "X", model)
    if X.shape[0] == 0:
        raise ValueError(f"X is empty (shape {X.shape})")
    y = targets_like(y, X)
    _check_target_shape(model, y)
    shuffle, step_timeout = flag(shuffle, "shuffle"), positive(step_timeout, "step_timeout")
    epochs = integer(epochs, "epochs", 0)
    batch_size = integer(batch_size, "batch_size", 1)
    sync_every = integer(sync_every, "sync_every", 1)
    workers = sorted(client.nthreads())
    n_workers = len(workers)
    if not n_workers:
        raise ValueError("fastfc.dask.fit: the cluster has no workers")
    if batch_size % n_workers:
        raise ValueError(f"batch_size={batch_size} is not divisible by the {n_workers} "
                         f"workers: each takes batch_size / n_workers rows a step; use a "
                         f"multiple of {n_workers}")
    if X.numblocks[0] < n_workers:   # a worker without rows would shrink the global batch
        rows = -(-X.shape[0] // n_workers)
        X, y = X.rechunk({0: rows}), y.rechunk({0: rows})
    validation = _validation(model, validation_data)
    callbacks = list(callbacks or [])
    seed = int(np.random.SeedSequence().entropy) if seed is None else integer(seed, "seed", 0)

    key = uuid.uuid4().hex
    data = model_bytes(model)
    watch = _Watch(client, workers, step_timeout)
    try:
        sizes, placed = _start(client, key, data, X, y, workers, sync_every, watch)
        work = model_from_bytes(data)   # this process's copy: validation, callbacks
        work.stop_training = False   # as model.fit: a flag left by an earlier fit stops nothing
        for cb in callbacks:
            getattr(cb, "set_model", lambda m: None)(work)
        history = History()
        _call(callbacks, "on_train_begin", {})
        epoch = model.epochs_done
        final = None
        for e in range(epochs):
            _call(callbacks, "on_epoch_begin", epoch, {})
            last = e == epochs - 1
            metrics, state = _epoch(client, key, placed, sizes, epoch, batch_size // n_workers,
                                    sync_every, seed if shuffle else None, watch,
                                    want_state=bool(last or validation or callbacks))
            logs = {"loss": metrics[0] / metrics[2]}
            if model.loss.classifier:
                logs["accuracy"] = metrics[1] / metrics[2]
            if state is not None:
                _set_state(work, state, epoch + 1)
                final = state
            if validation is not None:
                v = work.evaluate(*validation)
                logs["val_loss"] = v["loss"]
                if v["accuracy"] is not None:
                    logs["val_accuracy"] = v["accuracy"]
            history.append(epoch, **logs)
            epoch += 1
            _call(callbacks, "on_epoch_end", epoch - 1, logs)
            if work.stop_training:   # the state of this epoch's end is `final`
                break
        _call(callbacks, "on_train_end", {})
    finally:
        watch.forget(key)
    if final is not None:
        _set_state(model, final, epoch)
        if callbacks:   # a callback may have set the weights (restored the best ones)
            model._theta[...] = work._theta
    model.stop_training = work.stop_training   # as model.fit leaves it
    history.stopped_epoch = model.epochs_done
    return history


def _call(callbacks, hook, *args):
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is not None:
            fn(*args)


def _validation(model, validation_data):
    """(X_val, y_val) as NumPy arrays checked against the model, or None."""
    if validation_data is None:
        return None
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise ValueError("validation_data must be a pair (X_val, y_val)")
    xv, yv = (np.asarray(v.compute() if hasattr(v, "compute") else v) for v in validation_data)
    try:   # before any epoch, as model.fit checks it
        xv = as_2d_float(xv, "X", model.dtype, model.input_shape)
        model.loss.check_targets(yv, model.n_outputs, xv.shape[0])
    except (ValueError, TypeError) as e:
        raise type(e)(f"validation_data: {e}") from None
    return xv, yv


def _set_state(model, state, epochs_done):
    """Weights, optimizer state and dropout streams from a replica into `model`."""
    model._theta[...] = state["theta"]   # in place: layers and plans hold views of it
    opt = model.optimizer
    opt.state = None if state["opt_state"] is None else tuple(
        np.array(a, copy=True) for a in state["opt_state"])
    opt.t, opt.lr = state["opt_t"], state["opt_lr"]
    for layer, calls in zip(model.layers, state["dropout_calls"]):
        if calls is not None and isinstance(layer, layers_mod.Dropout):
            layer.calls = calls
    model.epochs_done = epochs_done


def _groups(rows, n_workers):
    """Contiguous groups of chunks, balanced by rows: the group of each chunk."""
    rows = np.asarray(rows, np.float64)
    mid = np.cumsum(rows) - rows / 2
    return np.minimum((mid * n_workers // max(rows.sum(), 1)).astype(int), n_workers - 1)


def _start(client, key, data, X, y, workers, sync_every, watch):
    """Compute X's and y's chunks, group them into partitions, put each on the worker
    holding most of its bytes, and build the replicas there. Returns the partitions'
    sizes and the worker of each partition."""
    xs = client.compute(list(X.to_delayed().ravel()))
    ys = client.compute(list(y.to_delayed().ravel()))
    _wait(client, xs + ys)
    group = _groups(X.chunks[0], len(workers))
    who = client.who_has(xs)
    nbytes = X.dtype.itemsize * int(np.prod(X.shape[1:]))
    local = np.zeros((len(workers), len(workers)))   # [group, worker] bytes already there
    for g, f, n in zip(group, xs, X.chunks[0]):
        for addr in who.get(f.key, ()):
            if addr in workers:
                local[g, workers.index(addr)] += n * nbytes
    placed, free = [None] * len(workers), set(range(len(workers)))
    for g in np.argsort(-local.max(axis=1), kind="stable"):
        best = max(sorted(free), key=lambda w: local[g, w])
        placed[g] = workers[best]
        free.discard(best)
    mode = "gradients" if sync_every == 1 else "parameters"
    starts = []
    for g, addr in enumerate(placed):
        parts = [p for i in np.flatnonzero(group == g) for p in (xs[i], ys[i])]
        starts.append(client.submit(_replica.start, key, data, mode, *parts, workers=[addr],
                                    allow_other_workers=False, pure=False,
                                    key=f"fastfc-start-{g}-{key}"))
    # the replicas check X and y as model.fit does: bad data is the caller's ValueError
    sizes = watch.results(starts, "while sending the partitions (before epoch 1)",
                          passthrough=(ValueError, TypeError))
    del xs, ys
    return sizes, placed


def _epoch(client, key, placed, sizes, epoch, share, sync_every, seed, watch, want_state):
    """Run one epoch's chain of rounds, a few rounds ahead of the one the driver waits
    for (the scheduler pipelines them; the driver holds no more than that); the epoch's
    (loss sum, correct, rows) over all workers and the first replica's state if asked."""
    n_steps = max(math.ceil(n / share) for n in sizes)
    # rows each partition gives step s: a partition smaller than its share gives what it
    # has, then nothing; the global batch shrinks accordingly
    starts = np.arange(n_steps) * share
    taken = np.clip(np.asarray(sizes)[:, None] - starts[None, :], 0, share)   # [worker, step]
    row0 = np.cumsum(taken, axis=0) - taken
    rows = taken.sum(axis=0)
    prev, ahead = [], collections.deque()
    for s0 in range(0, n_steps, sync_every):
        s1 = min(s0 + sync_every, n_steps)
        futs = []
        for w, addr in enumerate(placed):
            steps = [(int(starts[s]), int(starts[s] + taken[w, s]), int(row0[w, s]),
                      int(rows[s])) for s in range(s0, s1)]
            first = (epoch, None if seed is None else [seed, epoch, w]) if s0 == 0 else None
            futs.append(client.submit(_replica.run_round, key, first, steps, *prev,
                                      workers=[addr], allow_other_workers=False, pure=False,
                                      key=f"fastfc-round-{epoch}-{s0}-{w}-{key}"))
        prev = futs
        ahead.append((s0, futs))
        while len(ahead) > _AHEAD:
            s_wait, oldest = ahead.popleft()
            watch.results(oldest, f"in epoch {epoch + 1}, step {s_wait + 1} of {n_steps}",
                          gather=False)
    ends = [client.submit(_replica.end_epoch, key, want_state and w == 0, *prev,
                          workers=[addr], allow_other_workers=False, pure=False,
                          key=f"fastfc-end-{epoch}-{w}-{key}")
            for w, addr in enumerate(placed)]
    while ahead:
        s_wait, oldest = ahead.popleft()
        watch.results(oldest, f"in epoch {epoch + 1}, step {s_wait + 1} of {n_steps}",
                      gather=False)
    got = watch.results(ends, f"at the end of epoch {epoch + 1}")
    totals = np.sum([m for m, _ in got], axis=0)
    return totals, got[0][1]


def _wait(client, futures, timeout=None):
    """distributed.wait on `client`'s futures (wait alone uses the default client)."""
    from distributed import wait
    with client.as_current():
        return wait(futures, timeout=timeout)


class _Watch:
    """Waits for a fit's tasks while watching the cluster: a worker of the fit leaving,
    a task failing, or `futures` not finishing within `step_timeout` seconds raises a
    DistributedFitError saying where the fit was (after cancelling its tasks)."""

    poll = 0.5   # seconds between looks at the cluster's membership

    def __init__(self, client, workers, step_timeout):
        self.client, self.workers = client, list(workers)
        self.step_timeout = float(step_timeout)
        self.pending = []

    def results(self, futures, where, gather=True, passthrough=()):
        """The futures' results (None unless `gather`); a failed task's exception is
        raised as it is when it is one of the `passthrough` types."""
        from distributed import TimeoutError as DaskTimeout
        self.pending = futures
        since = time.monotonic()
        while True:
            try:
                _wait(self.client, futures, timeout=self.poll)
            except (DaskTimeout, TimeoutError):
                pass
            failed = next((f for f in futures if f.status == "error"), None)
            if failed is not None:
                exc = failed.exception()
                error = self._fail(f"a task failed {where}: {exc!r}")   # cancels the rest
                raise exc if isinstance(exc, passthrough) else error
            if all(f.status == "finished" for f in futures):
                self.pending = []
                return self.client.gather(futures) if gather else None
            members = set(self.client.nthreads())
            gone = [w for w in self.workers if w not in members]
            if gone:
                raise self._fail(f"worker {gone[0]} left the cluster {where}")
            if time.monotonic() - since > self.step_timeout:
                raise self._fail(f"no result for {self.step_timeout:g} s {where}")

    def _fail(self, what):
        self.client.cancel(self.pending, force=True)
        self.pending = []
        return DistributedFitError(f"fastfc.dask.fit: {what}; the model keeps its weights "
                                   f"from before the fit")

    def forget(self, key):
        """Drop the replicas on the workers still there."""
        if self.pending:
            self.client.cancel(self.pending, force=True)
        alive = [w for w in self.workers if w in set(self.client.nthreads())]
        if alive:
            try:
                self.client.run(_replica.forget, key, workers=alive, wait=True)
            except Exception:   # a worker leaving now: its replica went with it
                pass
