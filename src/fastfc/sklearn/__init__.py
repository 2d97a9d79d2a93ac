"""scikit-learn's MLPClassifier and MLPRegressor trained by fastfc: the same code with one
import changed (``from fastfc.sklearn import MLPClassifier``). Needs the ``sklearn`` extra
(``pip install fastfc[sklearn]``)."""
try:
    import scipy  # noqa: F401
    import sklearn  # noqa: F401
except ImportError as e:    # the extra's packages, named
    raise ImportError(f"fastfc.sklearn needs scikit-learn and scipy: pip install "
                      f"fastfc[sklearn] ({e})") from e

from fastfc.sklearn._estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
