"""A training step's arithmetic with subnormal numbers flushed to zero."""
from fastfc import _core


class flushed_subnormals:
    """While held, this thread's arithmetic (fastfc's and NumPy's) and that of the regions
    it opens treat subnormal numbers as zero and store zero for them (x86's FTZ and DAZ; as
    TensorFlow trains). A gradient that small is below any update's rounding, and each
    multiply-add on one took a ~100-cycle microcode assist: a 784-128-64-10 step at batch 32
    on a memorized batch ran 4-5x slower (docs/tuning.md, "Subnormal gradients").
    Predictions and fastfc.linear stay IEEE, as NumPy."""
    __slots__ = ("on", "before")

    def __init__(self, on: bool = True) -> None:
        self.on = on   # False: IEEE arithmetic while held, whatever the mode before

    def __enter__(self) -> None:
        self.before = _core._flush_subnormals(1 if self.on else 0)

    def __exit__(self, *exc) -> None:
        _core._flush_subnormals(self.before)
