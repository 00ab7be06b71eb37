"""ch_numba: 3D Cahn-Hilliard ground truth (NumPy reference, Numba CPU and CUDA kernels).

    import numpy as np
    import ch_numba
    p = ch_numba.CHParams(epsilon=3.0, mobility=1.0, W=1.0, dx=1.0, dt=1e-3)
    phi0 = ch_numba.initial.perlin((64, 64, 64), frequency=4, seed=7, mean=0.5)
    phi = ch_numba.evolve(phi0, steps=400, params=p, backend="cpu")
    F = ch_numba.free_energy(phi, p)
    batch = ch_numba.evolve(np.stack([phi0, phi]), steps=400, params=p)   # (B, X, Y, Z): independent members
    ds = ch_numba.open_dataset("data.h5")

Every name below is imported on first use (PEP 562): ``import ch_numba`` alone loads nothing but
this file, so a stdlib-only module such as :mod:`ch_numba.params` can be imported without numba
(the torch-free runtime reads ``ch_numba.params.IC_MEAN_CLIP``). ``CHParams`` comes from
:mod:`ch_numba.params`; ``evolve``, ``free_energy``, ``Stepper`` and ``BlowUpError`` from
:mod:`ch_numba.solver` (numba); ``initial`` and ``open_dataset`` pull in h5py and trimesh. A
submodule (``ch_numba.solver``, ``ch_numba.files``, ...) is imported when first named as an
attribute too. This package never imports torch.
"""

import importlib
import importlib.util

#: the version of the ch3d distribution (pyproject.toml)
__version__ = "0.1.0"
__all__ = ["CHParams", "evolve", "free_energy", "initial", "open_dataset", "Stepper", "BlowUpError", "__version__"]

#: public name -> (module, attribute; None: the module itself)
_LAZY = {
    "CHParams": (".params", "CHParams"),
    "evolve": (".solver", "evolve"),
    "free_energy": (".solver", "free_energy"),
    "Stepper": (".solver", "Stepper"),
    "BlowUpError": (".solver", "BlowUpError"),
    "initial": (".initial", None),
    "open_dataset": (".dataset", "open_dataset"),
}


def __getattr__(name):
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = importlib.import_module(module, __name__)
        return value if attr is None else getattr(value, attr)
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f".{name}", __name__)  # a submodule named as an attribute
    raise AttributeError(f"module 'ch_numba' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
