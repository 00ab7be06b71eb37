r"""Curriculum of teacher forcing (paper, sec. "training"): ground truth fed in early epochs only.

A training sub-sequence holds T frames φ_0 … φ_{T−1}; the network makes T − 1 steps and the loss
compares its predictions of frames 1 … T − 1 with the truth. The input of step k (k = 0 … T − 2)
is frame k, taken either from the ground truth or from the network's own previous prediction.

In epoch e (0-based) the first L(e) frames φ_0 … φ_{L(e)−1} are fed as ground truth and the
remaining inputs are the network's own outputs::

    L(e) = clip(⌊T (1 − (e + 1)/R)⌋, 1, T − 1)     for e < R
    L(e) = 1                                         for e ≥ R  (only the initial condition φ_0)

R is the ramp (25 epochs in the paper). L counts frames *including* the initial condition, so
L = 1 is a free run from φ_0 and L = T − 1 feeds every input from the ground truth (pure teacher
forcing). The floor is evaluated in integers, ⌊T (R − e − 1) / R⌋, so that e.g. T = 50,
R = 25, e = 0 gives 48 exactly (the float 50 · (1 − 1/25) is 47.999…).

In terms of :meth:`surrogate.model.CRNN.rollout`: ``teacher = truth[:, 1:L]`` (the L − 1
teacher-forced frames beyond the initial condition; none when L = 1).

Example, T = 50, R = 25: e = 0 → 48, 1 → 46, 12 → 24, 23 → 2, 24 → 1, ≥ 25 → 1.
"""

from __future__ import annotations

__all__ = ["teacher_frames", "schedule"]


def _int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def teacher_frames(epoch: int, T: int, ramp: int = 25) -> int:
    """Number L(e) of leading ground-truth frames (φ_0 included) fed in epoch ``epoch``.

    Parameters
    ----------
    epoch : int ≥ 0
        0-based epoch index e.
    T : int ≥ 2
        Frames of the training sub-sequence (T − 1 network steps).
    ramp : int ≥ 0
        Curriculum length R in epochs; 0 disables teacher forcing (always 1).

    Returns
    -------
    int in [1, T − 1]
    """
    e = _int(epoch, "epoch", 0)
    T = _int(T, "T (frames of the sequence)", 2)
    R = _int(ramp, "ramp", 0)
    if e >= R:
        return 1
    return min(max((T * (R - e - 1)) // R, 1), T - 1)


def schedule(epochs: int, T: int, ramp: int = 25) -> list[int]:
    """``[teacher_frames(e, T, ramp) for e in range(epochs)]``."""
    return [teacher_frames(e, T, ramp) for e in range(_int(epochs, "epochs", 0))]
