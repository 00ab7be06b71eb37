"""Physical and numerical parameters of the Cahn-Hilliard model.

Model (DESIGN.md section 1), in grid units::

    F[phi] = ∫ f(phi) + (eps²/2) |∇phi|² dV,      f(phi) = W phi² (1 - phi)²
    mu     = f'(phi) - eps² ∇²phi
    ∂phi/∂t = M ∇²mu

discretised on a periodic cubic grid (spacing dx) with the 7-point Laplacian and
explicit forward Euler in time (step dt).

Linear (von Neumann) stability of that scheme: the discrete Laplacian's symbol
reaches -k² with k² = 12/dx² (checkerboard mode), so the amplification factor is
1 - dt M k² (f'' + eps² k²); it stays in [-1, 1] when

    dt < 2 / (M (eps² k⁴ + f''max k²)),     f''max = max over [0, 1] of f'' = 2W.
"""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class CHParams:
    """Cahn-Hilliard parameters (all in grid units; defaults are the paper's).

    Attributes
    ----------
    epsilon : gradient-energy coefficient ε (interface width ~ ε / sqrt(2W)).
    mobility : constant mobility M.
    W : height of the double well f(φ) = W φ² (1 − φ)².
    dx : grid spacing.
    dt : explicit Euler time step; must be below :meth:`stable_dt`.
    """

    epsilon: float = 3.0
    mobility: float = 1.0
    W: float = 1.0
    dx: float = 1.0
    dt: float = 1e-3

    def __post_init__(self):
        for name in ("epsilon", "mobility", "W", "dx", "dt"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"CHParams.{name} must be a number, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"CHParams.{name} must be finite and > 0, got {value!r}")
        bound = self.stable_dt()
        if self.dt >= bound:
            raise ValueError(
                f"dt={self.dt:g} is above the explicit-Euler stability bound "
                f"dt < {bound:.6g} (= 2 / (M (eps² k⁴ + 2W k²)), k² = 12/dx²); choose a smaller dt"
            )

    def stable_dt(self) -> float:
        """Linear stability bound of forward Euler: 2 / (M (ε² k⁴ + f''max k²))."""
        k2 = 12.0 / self.dx**2
        fpp_max = 2.0 * self.W
        return 2.0 / (self.mobility * (self.epsilon**2 * k2**2 + fpp_max * k2))

    @property
    def interface_length(self) -> float:
        """ℓ = ε / sqrt(2W): the equilibrium profile is φ = ½(1 + tanh(x / (2ℓ)))."""
        return self.epsilon / math.sqrt(2.0 * self.W)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)
