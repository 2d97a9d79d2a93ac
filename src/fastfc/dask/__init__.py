"""fastfc on Dask: lazy inference over row-chunked dask arrays and synchronous
data-parallel training (``pip install fastfc[dask]``). See docs/distributed.md."""
from fastfc.dask._fit import DistributedFitError, fit
from fastfc.dask._inference import predict, predict_proba, transform

__all__ = ["predict", "predict_proba", "transform", "fit", "DistributedFitError"]
