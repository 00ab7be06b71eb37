"""The initial conditions by name (:data:`KINDS`, the CLI's ``--ic``) and the dispatcher :func:`make`."""

from __future__ import annotations

import numpy as np

from .arrays import from_dataset, from_npy
from .meshes import mesh
from .noise import perlin, perturbed_plane, white_noise
from .shapes import layers, sphere

#: the ``--ic`` kinds of the commands, each made by :func:`make` (the functions of this package by name)
KINDS = ("perlin", "sphere", "layers", "slab", "random", "slice", "mesh", "npy", "h5")

_OPTIONS = {
    "perlin": ("frequency", "mean", "amplitude"),
    "random": ("mean", "amplitude"),
    "slice": ("frequency", "mean", "amplitude", "axis"),
    "sphere": ("radius", "center", "inside", "outside", "width"),
    "layers": ("n_layers", "axis", "mean", "width"),
    "slab": ("n_layers", "axis", "mean", "width"),
    "mesh": ("path", "padding", "inside", "outside"),
    "npy": ("path",),
    "h5": ("path", "sequence", "frame"),
}
_ALL_OPTIONS = sorted({name for names in _OPTIONS.values() for name in names})


#: the kinds whose field depends on the boundary (periodic noise, minimum-image distance)
_BOUNDARY_KINDS = ("perlin", "slice", "sphere")


def make(kind: str, shape, seed: int = 7, boundary="periodic", **options) -> np.ndarray:
    """Build an initial condition by name (the CLI's ``--ic``).

    Parameters
    ----------
    kind : one of :data:`KINDS`
    shape : (X, Y, Z) tuple of positive ints (ignored by "npy" and "h5", whose array sets it)
    seed : int ≥ 1
        Used by the random kinds (perlin, random, slice).
    boundary : "periodic" (default), "neumann" or three of them (x, y, z), as ``CHParams.boundary``
        Along axes with no-flux walls the Perlin noise (perlin, slice) is not periodic and the sphere's
        distance is not the minimum image; the other kinds do not depend on it.
    **options
        Keyword arguments of the chosen function; "mesh", "npy" and "h5" take the file in
        ``path``. Options known to other kinds are ignored (so a CLI can pass its common
        options to every kind); unknown names are refused.

    Returns
    -------
    phi0 : float32 array (X, Y, Z)
    """
    if kind not in KINDS:
        raise ValueError(f"unknown initial condition {kind!r}; choose one of {', '.join(KINDS)}")
    unknown = sorted(set(options) - set(_ALL_OPTIONS))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for initial conditions; known: {', '.join(_ALL_OPTIONS)}"
        )
    kw = {name: options[name] for name in _OPTIONS[kind] if name in options}
    if kind in _BOUNDARY_KINDS:
        kw["boundary"] = boundary
    else:
        from ..params import parse_boundary

        parse_boundary(boundary)  # refused (one line) even where it changes nothing
    if kind in ("mesh", "npy", "h5"):
        if "path" not in kw:
            raise ValueError(f"initial condition {kind!r} needs a file path (option 'path')")
        path = kw.pop("path")
        if kind == "mesh":
            return mesh(path, shape, **kw)
        if kind == "npy":
            return from_npy(path)
        return from_dataset(path, **kw)
    if kind == "perlin":
        return perlin(shape, seed=seed, **kw)
    if kind == "random":
        return white_noise(shape, seed=seed, **kw)
    if kind == "slice":
        return perturbed_plane(shape, seed=seed, **kw)
    if kind == "sphere":
        return sphere(shape, **kw)
    return layers(shape, **kw)
