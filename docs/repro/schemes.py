"""The solver schemes of the ground truth: the explicit scheme at a safe fraction of its stability
bound (for a model whose metadata gives no explicit step) and the spectral scheme (SBDF2) at
matched accuracy, each as (CHParams, steps) covering one frame of the model's data."""

from __future__ import annotations

import numpy as np

import ch_numba

# The spectral scheme at matched accuracy: SBDF2 at dt = 2 keeps F(t) within 0.2 % of the explicit
# kernel's over a 64³, ε = 3 coarsening run (benchmarks/RESULTS.md, benchmarks/spectral.py); the
# time scale of the dynamics goes like ε² (τ = 4ε²/(M f''²)), so at another ε the same accuracy
# needs dt = 2 (ε/3)².
SPECTRAL_DT_EPS3 = 2.0


# The explicit scheme's step where the model's metadata gives none (a model last trained on spectral
# data): at most this fraction of its linear stability bound (CHParams.stable_dt). The explicit data
# sets took ~0.70 (ε = 3: dt = 1.0667e-3 = 0.704 of the bound, 3,000 steps per 3.2-unit frame; this
# rule gives 3,018 steps of 1.0603e-3).
EXPLICIT_DT_FRACTION = 0.7


def explicit_frame(p, frame_time: float):
    """(CHParams, steps) of the explicit scheme covering one frame: the fewest steps with
    dt ≤ EXPLICIT_DT_FRACTION · stable_dt (the solver's cost is not inflated by a needlessly small step)."""
    physics = dict(epsilon=p.epsilon, mobility=p.mobility, W=p.W, dx=p.dx)  # without p's scheme settings
    dt_max = EXPLICIT_DT_FRACTION * ch_numba.CHParams(**physics).stable_dt()
    steps = max(1, int(np.ceil(frame_time / dt_max - 1e-9)))
    return ch_numba.CHParams(**physics, dt=frame_time / steps), steps


def spectral_frame(p, frame_time: float):
    """(CHParams, steps) of the spectral scheme (SBDF2) covering one frame at matched accuracy."""
    dt_max = SPECTRAL_DT_EPS3 * (p.epsilon / 3.0) ** 2 * p.mobility**-1
    steps = max(1, int(np.ceil(frame_time / dt_max - 1e-9)))
    q = ch_numba.CHParams(
        epsilon=p.epsilon, mobility=p.mobility, W=p.W, dx=p.dx, dt=frame_time / steps, scheme="spectral", order=2
    )
    return q, steps
