"""ch_numba: 3D Cahn-Hilliard ground truth (NumPy reference, Numba CPU and CUDA kernels).

    import numpy as np
    import ch_numba
    p = ch_numba.CHParams(epsilon=3.0, mobility=1.0, W=1.0, dx=1.0, dt=1e-3)
    phi0 = ch_numba.initial.perlin((64, 64, 64), frequency=4, seed=7, mean=0.5)
    phi = ch_numba.evolve(phi0, steps=400, params=p, backend="cpu")
    F = ch_numba.free_energy(phi, p)
    batch = ch_numba.evolve(np.stack([phi0, phi]), steps=400, params=p)   # (B, X, Y, Z): independent members
    ds = ch_numba.open_dataset("data.h5")

`initial` and `open_dataset` are imported on first use (they pull in h5py and
trimesh). This package never imports torch.
"""

import importlib

from .params import CHParams
from .solver import BlowUpError, Stepper, evolve, free_energy

__version__ = "0.1.0"
__all__ = ["CHParams", "evolve", "free_energy", "initial", "open_dataset", "Stepper", "BlowUpError", "__version__"]


def __getattr__(name):
    if name == "initial":
        return importlib.import_module(".initial", __name__)
    if name == "open_dataset":
        return importlib.import_module(".dataset", __name__).open_dataset
    raise AttributeError(f"module 'ch_numba' has no attribute {name!r}")
