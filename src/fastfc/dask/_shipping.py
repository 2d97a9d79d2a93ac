"""A model shipped to Dask workers: its bytes once per worker, a model per thread there.

A Sequential's layers keep the buffers of their last call, so two tasks that share one
model object on a multi-threaded worker would overwrite each other's activations: each
thread rebuilds its own model from the bytes (once; later tasks on that thread reuse it).
"""
import hashlib
import io
import os
import pickle
import threading

import numpy as np

import fastfc


def model_bytes(model):
    """The model as bytes: a pickle where the model pickles, else ``save``'s .npz format."""
    try:
        return b"P" + pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    except (TypeError, AttributeError, pickle.PicklingError):
        buf = io.BytesIO()
        model.save(buf)
        return b"Z" + buf.getvalue()


def model_from_bytes(data):
    """The model `model_bytes` gave these bytes for (a new object each call)."""
    if data[:1] == b"P":
        return pickle.loads(data[1:])
    return fastfc.load(io.BytesIO(data[1:]))


class ShippedModel:
    """The bytes of a model, sent to each worker once (a scattered future or one task
    key); ``model()`` is the calling thread's own copy, built on first use."""

    def __init__(self, model):
        self.data = model_bytes(model)
        self.token = hashlib.sha1(self.data).hexdigest()
        self._local = threading.local()

    def __getstate__(self):
        return {"data": self.data, "token": self.token}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._local = threading.local()

    def __dask_tokenize__(self):
        return ("fastfc.ShippedModel", self.token)

    def model(self):
        m = getattr(self._local, "model", None)
        if m is None:
            m = self._local.model = model_from_bytes(self.data)
        return m


def task_threads():
    """Set fastfc's threads, in a task on a Dask worker, to the host's cores divided by
    the task threads of all Dask workers on that host (at least 1): the worker's cores
    // its threads, where a host's cores are shared by the workers it runs.

    ``fastfc.set_num_threads`` is process-wide; every task on a worker computes the same
    value (once per worker process, then cached), so tasks that set it concurrently
    agree. Outside a distributed worker (the local threaded scheduler runs in the
    caller's process) the caller's setting stays."""
    try:
        from distributed import get_client, get_worker
        worker = get_worker()
    except (ImportError, ValueError):
        return
    n = getattr(worker, "_fastfc_threads", None)
    if n is None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:   # not on Linux
            cpus = os.cpu_count() or 1
        host = worker.address.rsplit(":", 1)[0].split("://")[-1]
        workers = get_client().scheduler_info(n_workers=-1)["workers"].values()
        host_threads = sum(w["nthreads"] for w in workers if w["host"] == host)
        n = worker._fastfc_threads = max(1, cpus // max(host_threads, worker.state.nthreads))
    if fastfc.get_num_threads() != n:
        fastfc.set_num_threads(n)
