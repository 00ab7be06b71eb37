r"""Evaluation metrics of rollouts against ground truth (numpy only; never imports torch).

Used by ``python -m surrogate evaluate`` and the docs/ scripts; the nearest up/downsampling between the
grids is :mod:`export.runtime.resample`'s (one definition, which the torch-free runtime imports without this
package). Frames are numpy arrays of shape (T, X, Y, Z) (a time series) or (X, Y, Z) (one frame,
where it makes sense); per-frame metrics return float64 arrays of shape (T,) for a series and a
float for one frame. Reductions are done in float64.

By kind, one module each (every name importable from here, ``metrics.X``):

* :mod:`surrogate.metrics.errors` — prediction against truth: :func:`rmse`, the interface
  displacement δ (:func:`interface_displacement`, derivation there), :func:`relative_error`,
  :func:`relative_drift` / :func:`mass_drift`, :func:`ensemble_stats`.
* :mod:`surrogate.metrics.observables` — the free energy F (:func:`free_energy_series`,
  :func:`network_params`), the coarsening law F ~ t^α (:func:`fit_power_law`), the structure
  factor S(k) and the characteristic length L (:func:`structure_factor`,
  :func:`characteristic_length`).
* :mod:`surrogate.metrics.stationarity` — :func:`stationary_index` and the stationarity of layered
  end states (:func:`layered_fraction`, :func:`change_up_to_translation`, :func:`layer_shift`,
  :func:`interface_velocity`, :func:`stationarity`).
"""

from __future__ import annotations

from .errors import ensemble_stats, interface_displacement, mass_drift, relative_drift, relative_error, rmse
from .observables import (  # noqa: F401  (network_params, mirror_doubled: public, not in __all__ as before)
    characteristic_length,
    fit_power_law,
    free_energy_series,
    mirror_doubled,
    network_params,
    structure_factor,
)
from .stationarity import (
    change_up_to_translation,
    interface_velocity,
    layer_shift,
    layer_shifts,
    layered_fraction,
    stationarity,
    stationary_index,
)

__all__ = [
    "rmse",
    "interface_displacement",
    "free_energy_series",
    "relative_error",
    "fit_power_law",
    "mass_drift",
    "relative_drift",
    "stationary_index",
    "ensemble_stats",
    "layered_fraction",
    "change_up_to_translation",
    "layer_shift",
    "layer_shifts",
    "interface_velocity",
    "stationarity",
    "structure_factor",
    "characteristic_length",
]


def __getattr__(name):
    """``metrics.upsample`` / ``metrics.downsample``: deprecated aliases (issue 23) of
    :mod:`export.runtime.resample`'s, which is where to import them from."""
    if name in ("upsample", "downsample"):
        import warnings

        from export.runtime import resample

        warnings.warn(
            f"surrogate.metrics.{name} is deprecated: import it from export.runtime.resample",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(resample, name)
    raise AttributeError(f"module 'surrogate.metrics' has no attribute {name!r}")
