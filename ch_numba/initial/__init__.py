"""Initial conditions φ0 on the periodic (X, Y, Z) grid; every one seeded and deterministic.

All functions return float32 arrays of shape (X, Y, Z) with φ ∈ [0, 1] (φ = 1 and φ = 0
are the two phases), except :func:`perlin_noise`, which returns the raw float64 noise.

Perlin noise (the paper's ICs) equals the ``perlin-noise`` package's own values: for an
(Nx, Ny, Nz) grid, integer frequency f (lattice cells per side) and seed s ≥ 1, ::

    n(i, j, k) = PerlinNoise(octaves=f, seed=s).noise([i/Nx, j/Ny, k/Nz], tile_sizes=[1, 1, 1])
               = Σ_{c ∈ corners of the lattice cell of u}  Π_a fade(1 − |u_a − c_a|) · g(c mod f)·(u − c),
    u = ((i/Nx) mod 1 · f, (j/Ny) mod 1 · f, (k/Nz) mod 1 · f),   fade(t) = 6t⁵ − 15t⁴ + 10t³,

where g(c), c ∈ {0..f−1}³, is the package's random vector for lattice point c
(``sample_vector(3, s · hasher(c, (f, f, f)))``: three ``random.uniform(−1, 1)`` after
``random.seed``). The f³ vectors are taken from the package; the interpolation is evaluated
here with numpy for all voxels at once (≈ 30 ms for 64³; the package needs ~7 s). Because the
gradients depend on c mod f, the field is exactly periodic with period N along each axis and
smooth across the boundary; its correlation length is N/f voxels. A list of frequencies gives
the sum of the noises. Then ::

    perlin:  φ0 = mean + amplitude · n / max|n|,   clipped to [0, 1].

Other ICs (sharp 0/1 interfaces unless a tanh `width` is given; the equilibrium interface of
f = Wφ²(1−φ)² with gradient coefficient ε² is ½(1 + tanh(x/w)) with w = √2·ε/√W, i.e.
w ≈ 4.24 voxels for the paper's ε = 3)::

    sphere:  φ0 = outside + (inside − outside) · ½(1 − tanh((r − R)/w)),  r the periodic distance
             to the centre (sharp: inside where r < R);
    layers:  n periodic slabs across one axis, φ = 1 on a fraction `mean` of each period;
    random:  φ0 = mean + amplitude · U(−1, 1) per voxel (white noise, no correlation length);
    slice:   φ0 = mean, except the central plane (index N//2 along `axis`), which carries the
             Perlin noise of that plane, scaled to max deviation `amplitude`;
    mesh:    a closed triangle mesh scaled into the box, φ = inside at voxel centres inside it
             (parity of the crossings of a ray along z through each (x, y) column);
    npy/h5:  a user's (X, Y, Z) array, or one frame of a ch3d data set.

Modules, one concept each: ``noise`` (Perlin noise, perlin, random, slice), ``shapes`` (sphere,
layers), ``meshes`` (mesh voxelisation), ``arrays`` (npy and h5 files), ``kinds`` (:data:`KINDS` and
the dispatcher :func:`make`), ``arguments`` (the commands' IC arguments), ``checks`` (input checks).
Every function is also a name of this package (``ch_numba.initial.perlin``, ...).
"""

from __future__ import annotations

from .arguments import FILE_IC_KINDS, add_ic_arguments, ic_options, ic_options_from_args
from .arrays import from_dataset, from_npy
from .kinds import KINDS, make
from .meshes import mesh
from .noise import perlin, perlin_noise, perturbed_plane, white_noise
from .shapes import layers, slab, sphere

__all__ = [
    "KINDS",
    "make",
    "perlin",
    "perlin_noise",
    "white_noise",
    "perturbed_plane",
    "sphere",
    "layers",
    "slab",
    "mesh",
    "from_npy",
    "from_dataset",
    "FILE_IC_KINDS",
    "add_ic_arguments",
    "ic_options",
    "ic_options_from_args",
]

#: the kinds "random" and "slice" as functions: ``initial.random`` and ``initial.slice`` are served by the
#: module's ``__getattr__`` (PEP 562), so that inside this module ``slice`` stays the builtin (and ``random``
#: the standard library's name)
_KIND_FUNCTIONS = {"random": "white_noise", "slice": "perturbed_plane"}


def __getattr__(name):
    if name in _KIND_FUNCTIONS:
        return globals()[_KIND_FUNCTIONS[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_KIND_FUNCTIONS))
