"""What the two runners of a CRNN step share: metadata-derived properties and input checks.

:class:`export.runtime.Rollout` (an exported step in onnxruntime) and
:class:`surrogate.runner.TorchRunner` (a checkpoint in PyTorch) both derive from
:class:`RunnerBase`; the rollout writer (:mod:`export.rollout`) and the evaluation
(:mod:`surrogate.evaluate`) use either through this interface.

This module imports numpy and :mod:`export.runtime.resample` only (no torch, no onnxruntime, nothing of
:mod:`surrogate`), so the torch-free runtime can use it and the torch runner can import it from here.
"""

from __future__ import annotations

import numpy as np

from .grid import check_kernel
from .resample import downsample, upsample
from .spec import halo_cells

__all__ = ["RunnerBase", "check_threads", "check_counts"]


def check_threads(threads) -> None:
    """Raise ValueError unless ``threads`` is None or a positive integer (not a bool)."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")


def check_counts(steps, every, flag: str = "") -> None:
    """The one check of a rollout's step counts (the runners' ``rollout`` and ``export.rollout``'s
    ``--steps``/``--every``, ``flag="--"``): raise ValueError unless steps is an integer >= 0, every an
    integer >= 1 and steps a multiple of every (a frame every ``every`` steps, the last one after
    ``steps``: no step is run past the last frame)."""
    for name, v, low in (("steps", steps, 0), ("every", every, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ValueError(f"{flag}{name} must be an integer >= {low}, got {v!r}")
    if steps % every:
        raise ValueError(
            f"{flag}steps {steps} is not a multiple of {flag}every {every}; frames come every {every} steps"
        )


class RunnerBase:
    """Shared part of the runners. A subclass sets ``metadata`` (the ``ch3d`` metadata of
    :mod:`export.runtime.spec`: downscale, kernel, steps_per_frame, dt), ``dtype``, ``hidden_channels``
    and ``path``."""

    metadata: dict
    dtype: np.dtype
    hidden_channels: int
    #: (x, y, z) boundary names of the box the runner steps (``boundary=`` of the subclass; periodic by default)
    boundary: tuple = ("periodic", "periodic", "periodic")

    # -- description -----------------------------------------------------------------------
    @property
    def factor(self) -> int:
        """Downscale factor f, the metadata's ``downscale``: the network sees every f-th voxel of the
        ground-truth grid. (Named ``factor`` on a runner because :meth:`downscale` is the method that
        applies it to a field.)"""
        return int(self.metadata["downscale"])

    @property
    def kernel(self) -> int:
        return int(self.metadata["kernel"])

    @property
    def halo(self) -> int:
        """Ghost layers (network cells) one step needs around a subdomain (``export.runtime.spec.halo_cells``):
        ``downscale · halo`` solver cells."""
        return halo_cells(self.metadata)

    @property
    def stride(self) -> int:
        """Stored frames of the training data per network step (``train --stride``; 1 for older files)."""
        return int(self.metadata.get("stride", 1))

    @property
    def time_per_step(self) -> float:
        """Physical time of one network step, steps_per_frame · dt (steps_per_frame counts the solver steps
        of one network step = ``stride`` stored frames of the training data)."""
        return float(self.metadata["steps_per_frame"]) * float(self.metadata["dt"])

    # -- resolution helpers ----------------------------------------------------------------
    def downscale(self, field) -> np.ndarray:
        """Ground-truth field (..., X, Y, Z) -> network input (..., X/f, Y/f, Z/f): every f-th voxel along
        periodic axes, block means along axes with walls (``export.runtime.resample.downsample``)."""
        return downsample(field, self.factor, self.boundary)

    def upscale(self, pred) -> np.ndarray:
        """Network field (..., X, Y, Z) -> (..., f·X, f·Y, f·Z), each voxel repeated f³ times."""
        return upsample(pred, self.factor)

    def to_network(self, phi) -> np.ndarray:
        """Solver field(s) -> network input: (X, Y, Z) or a solver batch (B, X, Y, Z) at the ground-truth
        resolution -> (B, 1, X/f, Y/f, Z/f) (B = 1 for a single field), as :meth:`downscale`.

        The solver (ch_numba) batches as (B, X, Y, Z); the network as (N, 1, X, Y, Z) (one channel).
        """
        a = np.asarray(phi)
        if a.ndim not in (3, 4):
            raise ValueError(f"expected a solver field (X, Y, Z) or batch (B, X, Y, Z), got shape {a.shape}")
        a = a[None] if a.ndim == 3 else a
        return np.ascontiguousarray(self.downscale(a)[:, None])

    def from_network(self, pred) -> np.ndarray:
        """Network output (N, 1, X, Y, Z) -> solver batch (N, f·X, f·Y, f·Z), each voxel repeated f³ times."""
        a = np.asarray(pred)
        if a.ndim != 5 or a.shape[1] != 1:
            raise ValueError(f"expected a network field (N, 1, X, Y, Z), got shape {a.shape}")
        return self.upscale(a[:, 0])

    # -- checks ----------------------------------------------------------------------------
    def check_grid(self, grid) -> None:
        """Raise ValueError unless the network can take a spatial grid (X, Y, Z) (each ≥ kernel;
        ``export.runtime.grid.check_kernel``, the one definition of that refusal)."""
        grid = tuple(int(n) for n in grid)
        if len(grid) != 3:
            raise ValueError(f"expected a spatial grid (X, Y, Z), got {grid}")
        check_kernel(
            grid,
            1,
            self.kernel,
            what="the network grid",
            remedy=f"each of X, Y, Z must be >= {self.kernel} (periodic {self.kernel}^3 stencils)",
        )

    def _as_array(self, phi, name: str = "phi") -> tuple[np.ndarray, bool]:
        """phi as a contiguous (N, 1, X, Y, Z) array of the model's dtype, and whether it came as (X, Y, Z)."""
        a = np.asarray(phi)
        if a.ndim == 3:
            a, squeeze = a[None, None], True
        elif a.ndim == 5 and a.shape[1] == 1:
            squeeze = False
        else:
            raise ValueError(
                f"expected {name} of shape (X, Y, Z) or (N, 1, X, Y, Z) at the network's resolution, got {a.shape}"
            )
        if a.shape[0] < 1:
            raise ValueError(f"expected {name} with a batch of at least 1, got {a.shape}")
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise ValueError(f"expected {name} to be a real array, got dtype {a.dtype}")
        self.check_grid(a.shape[2:])
        a = np.ascontiguousarray(a, dtype=self.dtype)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains NaN or Inf values")
        return a, squeeze

    @staticmethod
    def _check_counts(steps, every) -> None:
        """The arguments of ``rollout`` (:func:`check_counts`, the one definition)."""
        check_counts(steps, every)

    def _repr(self, where: str) -> str:
        """``Name('path', where, hidden=H, downscale=f, time_per_step=t)``."""
        return (
            f"{type(self).__name__}({str(self.path)!r}, {where}, hidden={self.hidden_channels}, "
            f"downscale={self.factor}, time_per_step={self.time_per_step:g})"
        )
