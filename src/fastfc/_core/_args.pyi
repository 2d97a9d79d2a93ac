"""Types of fastfc._core._args: the argument checks (cimported by the other modules)."""
from collections.abc import Mapping

# activation name -> the code C receives
ACTIVATIONS: Mapping[str, int]
