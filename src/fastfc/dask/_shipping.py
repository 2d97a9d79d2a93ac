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
import warnings

import fastfc


def model_bytes(model, inference=False):
    """The model as bytes: a pickle where the model pickles, else ``save``'s .npz format
    (for `inference`, also without an optimizer that .npz cannot hold)."""
    try:
        return b"P" + pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    except (TypeError, AttributeError, pickle.PicklingError):
        buf = io.BytesIO()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.save(buf)
        # e.g. a custom optimizer: the workers would train with another (inference: no use)
        if caught and not inference:
            raise TypeError(f"fastfc.dask cannot send this model to the workers: "
                            f"{caught[0].message}")
        return b"Z" + buf.getvalue()


def model_from_bytes(data):
    """The model `model_bytes` gave these bytes for (a new object each call)."""
    if data[:1] == b"P":
        return pickle.loads(data[1:])
    return fastfc.load(io.BytesIO(data[1:]))


class ShippedModel:
    """The bytes of a model, sent to each worker once (a scattered future or one task
    key); ``model()`` is the calling thread's own copy, built on first use."""

    def __init__(self, model, inference=False):
        self.data = model_bytes(model, inference)
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


def task_threads(whole_worker=False):
    """Set fastfc's threads for a task on a Dask worker: the worker's cores // its task
    threads, or all the worker's cores for a fit's tasks (`whole_worker`: they run one
    after another on a worker). A worker's cores are its share of its host's, in
    proportion to its task threads among all Dask workers on that host.

    ``fastfc.set_num_threads`` is process-wide: every task of a kind on a worker computes
    the same value, so tasks that set it concurrently agree (and fastfc's results do not
    depend on the thread count, only its speed does). Outside a distributed worker (the
    local threaded scheduler runs in the caller's process) and on an in-process worker
    (``LocalCluster(processes=False)``: an ``inproc://`` address) the caller's setting
    stays."""
    try:
        from distributed import get_worker
        worker = get_worker()
    except (ImportError, ValueError):
        return
    if worker.address.startswith("inproc://"):   # the caller's process: its setting, not ours
        return
    cores = getattr(worker, "_fastfc_cores", None)
    if cores is None:
        cores = worker._fastfc_cores = _worker_cores(worker)
    n = max(1, cores if whole_worker else cores // worker.state.nthreads)
    if fastfc.get_num_threads() != n:
        fastfc.set_num_threads(n)


def _worker_cores(worker):
    """This worker's share of its host's cores (computed once per worker process)."""
    from distributed import get_client
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:   # not on Linux
        cpus = os.cpu_count() or 1
    from distributed.comm import get_address_host
    host = get_address_host(worker.address)   # "::1" for tcp://[::1]:port, as the scheduler's
    workers = get_client().scheduler_info(n_workers=-1)["workers"].values()
    host_threads = sum(w["nthreads"] for w in workers if w["host"] == host)
    mine = worker.state.nthreads
    return max(1, cpus * mine // max(host_threads, mine))
