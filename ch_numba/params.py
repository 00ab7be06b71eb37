"""Physical and numerical parameters of the Cahn-Hilliard model.

Model (the paper's; docs/GUIDE.md, section 2 "Equations"), in grid units::

    F[phi] = ∫ f(phi) + (eps²/2) |∇phi|² dV,      f(phi) = W phi² (1 - phi)²
    mu     = f'(phi) - eps² ∇²phi
    ∂phi/∂t = M ∇²mu

discretised on a periodic cubic grid (spacing dx) with the 7-point Laplacian Δ_h and one of two
time integrators (``CHParams.scheme``):

``"explicit"`` (default, the paper's): forward Euler, φ ← φ + dt M Δ_h(f'(φ) − ε² Δ_h φ).
Linear (von Neumann) stability: the discrete Laplacian's symbol reaches -k² with k² = 12/dx²
(checkerboard mode), so the amplification factor is 1 - dt M k² (f'' + eps² k²); it stays in
[-1, 1] when::

    dt < 2 / (M (eps² k⁴ + f''max k²)),     f''max = max over [0, 1] of f'' = 2W.

``"spectral"``: semi-implicit Fourier-spectral with linear stabilisation S (ch_numba.spectral):
−ε²Δ² and S·Δ implicit, f'(φ) explicit; first order (stabilised semi-implicit Euler) or second
order (SBDF2). Any finite dt > 0 is accepted; the energy-stability condition and what was only
tested are in ``ch_numba.spectral``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from .options import option

SCHEMES = ("explicit", "spectral")
#: boundary conditions of an axis: periodic, or no-flux walls (∂φ/∂n = ∂μ/∂n = 0, mirror ghost values)
BOUNDARIES = ("periodic", "neumann")
PERIODIC = ("periodic", "periodic", "periodic")
SYMBOLS = ("stencil", "exact")
ORDERS = (1, 2)
_PHYSICS = ("epsilon", "mobility", "W", "dx", "dt")
_SPECTRAL = ("stabilization", "symbol", "order")  # settings of the spectral scheme only
_PHYSICS_GROUP, _SCHEME_GROUP = "physics (grid units)", "time integrator"  # the command-line option groups
#: the window each generated sequence's drawn mean φ̄ is clipped to (inside the spinodal region, where
#: f'' < 0 for φ in 1/2 ± 1/(2√3)); changing it would change the data of existing configurations. Used by
#: the data-set generator (``ch_numba.dataset.DatasetConfig``) and by the torch-free runtime's
#: training range of mean φ (``export.runtime``), which imports this stdlib-only module for it.
IC_MEAN_CLIP = (0.3, 0.7)


def normalize_boundary(value, shown=None) -> tuple:
    """``"periodic"``, ``"neumann"`` (every axis) or three of them for (x, y, z) → a 3-tuple of names.

    Raises ValueError (one line) for an unknown name or a sequence whose length is not 3.
    """
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        names = (value,) * 3
    else:
        try:
            names = tuple(v.decode() if isinstance(v, bytes) else v for v in value)
        except TypeError:
            raise ValueError(
                f"boundary must be 'periodic', 'neumann' or three of them (x, y, z), got {value!r}"
            ) from None
        if len(names) != 3:
            raise ValueError(f"boundary needs one entry per axis (x, y, z), got {len(names)}: {shown or repr(value)}")
    for name in names:
        if name not in BOUNDARIES:
            raise ValueError(f"unknown boundary {name!r}; choose one of {', '.join(BOUNDARIES)} (per axis x, y, z)")
    return tuple(str(n) for n in names)


def parse_boundary(text) -> tuple:
    """The command-line and metadata form: ``"periodic"``, ``"neumann"`` or ``"X,Y,Z"`` (also a sequence)."""
    if isinstance(text, bytes):
        text = text.decode()
    if isinstance(text, str):
        parts = [t.strip() for t in text.split(",")]
        return normalize_boundary(parts[0] if len(parts) == 1 else parts, repr(text))
    return normalize_boundary(text)


def wall_axes(boundary) -> tuple:
    """(x, y, z) booleans, True on the axes with no-flux walls; ``boundary``: None (periodic) or any form
    :func:`parse_boundary` reads ("periodic", "neumann", "X,Y,Z" or three names)."""
    if boundary is None:
        return (False, False, False)
    return tuple(b == "neumann" for b in parse_boundary(boundary))


def boundary_text(boundary) -> str:
    """``"periodic,periodic,neumann"``: the 3-tuple as the text stored in files and metadata."""
    return ",".join(normalize_boundary(boundary))


def boundary_argument(text: str) -> tuple:
    """argparse ``type`` of ``--boundary``: :func:`parse_boundary`, its error as argparse's one-line message."""
    import argparse

    try:
        return parse_boundary(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


@dataclasses.dataclass(frozen=True)
class CHParams:
    """Cahn-Hilliard parameters and the time integrator (all in grid units; defaults are the paper's).

    Attributes
    ----------
    epsilon : float
        Gradient-energy coefficient ε (interface width ~ :math:`ε / \\sqrt{2W}`).
    mobility : float
        Constant mobility M.
    W : float
        Height of the double well :math:`f(φ) = W φ^2 (1 − φ)^2`.
    dx : float
        Grid spacing.
    dt : float
        Time step; for ``scheme="explicit"`` it must be below :meth:`stable_dt`.
    scheme : str
        ``"explicit"`` (forward Euler, default) or ``"spectral"`` (semi-implicit Fourier-spectral).
    stabilization : float or None
        S ≥ 0 of the spectral scheme (None: S = W, stored as that number, which makes the first-order
        scheme energy stable while φ stays in [0, 1]; see ``ch_numba.spectral``). Spectral only.
    symbol : str
        Fourier symbol of the Laplacian in the spectral scheme: ``"stencil"`` (default, the 7-point
        stencil's :math:`−(2/dx^2) Σ_a (1 − \\cos(k_a dx))`: the same semi-discrete system as the explicit
        kernel) or ``"exact"`` (:math:`−|k|^2`). Spectral only.
    order : int
        1 (stabilised semi-implicit Euler) or 2 (SBDF2, default). Spectral only.
    boundary : tuple of str
        One of ``"periodic"`` (default) and ``"neumann"`` (no-flux walls) per axis (x, y, z); given as one
        name for every axis, ``"X,Y,Z"`` or three names.

    Notes
    -----
    Each field is also an option of ``python -m ch_numba simulate/generate`` (``ch_numba.options``).

    ``as_dict()`` lists the spectral settings only for ``scheme="spectral"``, so explicit runs
    describe themselves as before the option existed; :meth:`from_metadata` rebuilds the object from
    any such mapping (a data set's root attributes, an ONNX model's metadata).
    """

    epsilon: float = option(3.0, "gradient coefficient ε (default %(default)s)", group=_PHYSICS_GROUP)
    mobility: float = option(1.0, "mobility M (default %(default)s)", group=_PHYSICS_GROUP)
    W: float = option(1.0, "double-well height W (default %(default)s)", flag="--W", group=_PHYSICS_GROUP)
    dx: float = option(1.0, "grid spacing (default %(default)s)", group=_PHYSICS_GROUP)
    dt: float = option(
        1e-3,
        "time step; explicit: must be below the stability bound (default %(default)s); spectral: any dt > 0 (e.g. 1)",
        group=_PHYSICS_GROUP,
    )
    scheme: str = option(
        "explicit",
        "explicit: forward Euler, the paper's (default); spectral: semi-implicit Fourier-spectral, "
        "large stable steps (cpu backend)",
        choices=SCHEMES,
        group=_SCHEME_GROUP,
    )
    stabilization: float | None = option(
        None, "spectral: stabilisation constant S >= 0 (default: W)", metavar="S", group=_SCHEME_GROUP
    )
    symbol: str = option(
        "stencil",
        "spectral: Laplacian symbol, stencil (the 7-point stencil's, same system as explicit; "
        "default) or exact (-|k|^2)",
        choices=SYMBOLS,
        group=_SCHEME_GROUP,
    )
    order: int = option(
        2,
        "spectral: 1 (stabilised semi-implicit Euler) or 2 (SBDF2; default %(default)s)",
        choices=ORDERS,
        group=_SCHEME_GROUP,
    )
    boundary: tuple = option(
        PERIODIC,
        "periodic (default), neumann (no-flux walls half a cell outside the first and last voxel), or "
        "X,Y,Z: one of them per axis, e.g. periodic,periodic,neumann for a film between two walls",
        type=boundary_argument,
        metavar="periodic|neumann|X,Y,Z",
        group=_PHYSICS_GROUP,
    )

    def __repr__(self) -> str:
        """The dataclass's repr; ``boundary`` only when some axis has walls (periodic boxes read as before walls
        existed, e.g. in the report's JSON)."""
        shown = [f for f in dataclasses.fields(self) if f.name != "boundary" or not self.periodic]
        return f"CHParams({', '.join(f'{f.name}={getattr(self, f.name)!r}' for f in shown)})"

    def __post_init__(self):
        object.__setattr__(self, "boundary", parse_boundary(self.boundary))
        for name in _PHYSICS:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"CHParams.{name} must be a number, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"CHParams.{name} must be finite and > 0, got {value!r}")
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {self.scheme!r}; choose one of {', '.join(SCHEMES)}")
        if self.scheme == "explicit":
            defaults = {f.name: f.default for f in dataclasses.fields(self) if f.name in _SPECTRAL}
            changed = [k for k in _SPECTRAL if getattr(self, k) != defaults[k]]
            if changed:
                raise ValueError(f"CHParams.{changed[0]} applies to scheme='spectral' only (scheme is 'explicit')")
            bound = self.stable_dt()
            if self.dt >= bound:
                raise ValueError(
                    f"dt={self.dt:g} is above the explicit-Euler stability bound "
                    f"dt < {bound:.6g} (= 2 / (M (eps² k⁴ + 2W k²)), k² = 12/dx²); choose a smaller dt "
                    f"or scheme='spectral'"
                )
            return
        s = self.stabilization
        if s is not None and (not isinstance(s, (int, float)) or isinstance(s, bool) or not math.isfinite(s) or s < 0):
            raise ValueError(f"CHParams.stabilization must be a finite number >= 0 (or None for W), got {s!r}")
        if self.symbol not in SYMBOLS:
            raise ValueError(f"unknown Laplacian symbol {self.symbol!r}; choose one of {', '.join(SYMBOLS)}")
        if self.order not in ORDERS or isinstance(self.order, bool):
            raise ValueError(f"CHParams.order must be 1 or 2, got {self.order!r}")
        if s is None:  # resolved, so that equal settings compare equal (and files record the number)
            object.__setattr__(self, "stabilization", float(self.W))

    def stable_dt(self) -> float:
        """Linear stability bound of forward Euler: 2 / (M (ε² k⁴ + f''max k²))."""
        k2 = 12.0 / self.dx**2
        fpp_max = 2.0 * self.W
        return 2.0 / (self.mobility * (self.epsilon**2 * k2**2 + fpp_max * k2))

    @property
    def S(self) -> float:
        """The spectral scheme's stabilisation constant (``stabilization``, or W when None)."""
        return float(self.W if self.stabilization is None else self.stabilization)

    @property
    def interface_length(self) -> float:
        """The interface length :math:`ℓ = ε / \\sqrt{2W}`; the equilibrium profile is
        :math:`φ = ½(1 + \\tanh(x / (2ℓ)))`."""
        return self.epsilon / math.sqrt(2.0 * self.W)

    @property
    def periodic(self) -> bool:
        """True when every axis is periodic (the default)."""
        return self.boundary == PERIODIC

    @property
    def neumann_axes(self) -> tuple:
        """Three booleans (x, y, z); True on the axes with no-flux walls."""
        return wall_axes(self.boundary)

    def describe(self) -> str:
        """One line: the physics and the scheme (for logs and summaries)."""
        text = f"epsilon={self.epsilon:g} M={self.mobility:g} W={self.W:g} dx={self.dx:g} dt={self.dt:g}"
        if not self.periodic:
            text += f", boundary {boundary_text(self.boundary)}"
        if self.scheme == "spectral":
            text += f", spectral order {self.order}, S={self.S:g}, {self.symbol} symbol"
        return text

    def as_dict(self) -> dict:
        """The fields as a dict; the spectral settings (S resolved) only for ``scheme="spectral"``, the
        boundary (as the text ``"X,Y,Z"``, e.g. ``"periodic,periodic,neumann"``) only when some axis is not
        periodic, so periodic runs describe themselves as before the option existed."""
        d = {k: getattr(self, k) for k in _PHYSICS}
        if self.scheme == "spectral":
            d.update(scheme="spectral", stabilization=self.S, symbol=self.symbol, order=int(self.order))
        if not self.periodic:
            d["boundary"] = boundary_text(self.boundary)
        return d

    @classmethod
    def from_metadata(cls, meta: Mapping, **override) -> "CHParams":
        """Rebuild from a mapping written by :meth:`as_dict` (data-set attributes, ONNX metadata).

        Missing physics keys take the defaults, a missing ``scheme`` means ``"explicit"`` and a missing
        ``boundary`` periodic (files written before the options); numpy scalars and bytes are accepted.
        ``override`` replaces entries (e.g. ``dx=`` of a coarser grid). Raises ValueError naming a bad entry.
        """
        d = {**dict(meta), **override}
        kw = {}
        for k in _PHYSICS:
            if d.get(k) is not None:
                try:
                    kw[k] = float(d[k])
                except (TypeError, ValueError):
                    raise ValueError(f"metadata entry {k}={d[k]!r} is not a number") from None
        if d.get("boundary") is not None:  # absent: periodic (files written before the option)
            kw["boundary"] = parse_boundary(d["boundary"])
        scheme = d.get("scheme", "explicit")
        scheme = scheme.decode() if isinstance(scheme, bytes) else str(scheme)
        kw["scheme"] = scheme
        if scheme == "spectral":
            if d.get("stabilization") is not None:
                kw["stabilization"] = float(d["stabilization"])
            if d.get("symbol") is not None:
                symbol = d["symbol"]
                kw["symbol"] = symbol.decode() if isinstance(symbol, bytes) else str(symbol)
            if d.get("order") is not None:
                kw["order"] = int(d["order"])
        return cls(**kw)
