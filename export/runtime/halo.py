"""Domain decomposition: one stateless step of a subdomain with ghost layers (numpy + a session).

A host that splits the periodic box over ranks keeps, per subdomain, φ, h1, h2 on its interior
(nx, ny, nz) and exchanges ``halo`` ghost layers per side with its neighbours before each step::

    phi_g, h1_g, h2_g = (ghosted(a, lo, size, halo) for a in (phi, h1, h2))   # or an MPI exchange
    phi_i, h1_i, h2_i = step_halo(rollout, phi_g, h1_g, h2_g, halo)           # the interiors, one step on

:func:`step_halo` runs the unchanged graph on the extended block (its periodic padding then wraps
the block onto itself, which spoils only the outer ``halo`` layers) and returns the interiors of all
three outputs. ``halo`` ≥ the model's ``export.runtime.spec.halo_cells`` (6 for k = 3,
conservative; 5 otherwise): then the interior equals the whole-box step up to round-off. A
conservative model removes the volume mean of its flux; here that mean is taken over the extended
block instead of the box, which changes φ′ by round-off only (the divergence of a constant is zero),
so no mean is exchanged. Each interior extent must be ≥ ``halo`` (the ghosts then come from the
nearest neighbours only). A Rollout made with no-flux walls (``boundary=``) is refused: the ghost layers
come from the neighbours on every axis.

Cost: the halo is ``downscale · halo`` solver cells; subdomain origins are multiples of ``downscale``
on the solver grid (the network grid samples every downscale-th voxel from voxel 0). Each rank
computes ((n + 2·halo)/n)³ of its interior's work: 5.4× for a 16³ interior with halo 6, 2.6× at 32³,
1.7× at 64³ — use few, large subdomains.

The C API has the same step (``ch3d_step_halo`` in native/include/ch3d_embed.h).
"""

from __future__ import annotations

import numpy as np

__all__ = ["step_halo", "ghosted"]


def ghosted(a, lo, size, halo: int) -> np.ndarray:
    """The block of a periodic field ``a`` (..., X, Y, Z) starting at ``lo`` (3 ints) of interior
    ``size`` (3 ints) with ``halo`` ghost layers on every side, wrapped around the box: shape
    (..., size + 2·halo per axis). What a host's halo exchange delivers, for tests and single-process use."""
    a = np.asarray(a)
    for axis, (start, n) in enumerate(zip(lo, size)):
        idx = np.arange(start - halo, start + n + halo)
        a = np.take(a, idx, axis=a.ndim - 3 + axis, mode="wrap")
    return a


def _as5(a, channels, name: str) -> tuple[np.ndarray, bool]:
    """(N, C, X, Y, Z) view of ``a`` ((C, X, Y, Z) or (X, Y, Z) for C = 1 also taken), and whether it was batched."""
    a = np.asarray(a)
    if a.ndim == 5 and a.shape[1] == channels:
        return a, True
    if channels == 1 and a.ndim == 3:
        return a[None, None], False
    if a.ndim == 4 and a.shape[0] == channels:
        return a[None], False
    single = "X, Y, Z" if channels == 1 else f"{channels}, X, Y, Z"
    raise ValueError(
        f"expected {name} of shape (N, {channels}, X, Y, Z) or ({single}) with ghost layers, got {a.shape}"
    )


def step_halo(runner, phi, h1, h2, halo: int | None = None):
    """One step of a subdomain: φ, h1, h2 with ``halo`` ghost layers per side in, the interiors of
    φ′, h1′, h2′ out (:mod:`export.runtime.halo`). Stateless: ``runner``'s running state is not touched.

    ``runner``: an :class:`export.runtime.Rollout`. ``phi`` (N, 1, X+2g, Y+2g, Z+2g) or (X+2g, Y+2g, Z+2g),
    ``h1``, ``h2`` (N, H, ...) or (H, ...), g = ``halo`` (default: the model's :attr:`halo`). Returns
    arrays of the same layouts with the ghost layers cut off. ValueError (one line) for a halo below
    the model's, an interior smaller than the halo, shapes that do not match, NaN or Inf.
    """
    boundary = getattr(runner, "boundary", ("periodic",) * 3)
    if any(b != "periodic" for b in boundary):
        raise ValueError(
            f"subdomain steps (step_halo) take their ghost layers from the neighbours on every axis: make the "
            f"Rollout without boundary={','.join(boundary)!r} (walls are the whole-box step's)"
        )
    need = runner.halo
    g = need if halo is None else halo
    if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or g < need:
        raise ValueError(
            f"halo {g!r} is less than the model's halo {need}: the interior would differ from the whole-box step"
        )
    g = int(g)
    hidden = runner.hidden_channels
    p, batched = _as5(phi, 1, "phi")
    a1, _ = _as5(h1, hidden, "h1")
    a2, _ = _as5(h2, hidden, "h2")
    n, _, *ext = p.shape
    if a1.shape != (n, hidden, *ext) or a2.shape != (n, hidden, *ext):
        raise ValueError(
            f"h1 {a1.shape} and h2 {a2.shape} must be ({n}, {hidden}, {', '.join(map(str, ext))}) like phi"
        )
    interior = [e - 2 * g for e in ext]
    if min(interior) < g:
        raise ValueError(
            f"the interior {'x'.join(map(str, interior))} (phi's {'x'.join(map(str, ext))} less 2 x halo {g}) is "
            f"smaller than the halo {g} along an axis"
        )
    runner.check_grid(ext)
    feeds = {}
    for name, a in (("phi", p), ("h1", a1), ("h2", a2)):
        a = np.ascontiguousarray(a, dtype=runner.dtype)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains NaN or Inf values")
        feeds[name] = a
    outs = runner.session.run(["phi_next", "h1_next", "h2_next"], feeds)
    cut = (slice(None), slice(None), *(slice(g, e - g) for e in ext))
    phi_i, h1_i, h2_i = (np.ascontiguousarray(o[cut]) for o in outs)
    if batched:
        return phi_i, h1_i, h2_i
    return (phi_i[0, 0] if np.asarray(phi).ndim == 3 else phi_i[0]), h1_i[0], h2_i[0]
