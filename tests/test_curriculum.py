"""Curriculum of teacher forcing: L(e) = clip(⌊T(1 − (e+1)/R)⌋, 1, T−1) for e < R, then 1."""

import pytest

from surrogate.curriculum import schedule, teacher_frames


@pytest.mark.parametrize(
    "epoch, expected",
    [
        (0, 48),  # ⌊50 · 24/25⌋ = 48 (the float 50 · (1 − 1/25) is 47.99…: integer arithmetic needed)
        (1, 46),  # ⌊50 · 23/25⌋
        (2, 44),
        (5, 38),  # ⌊50 · 19/25⌋
        (10, 28),  # ⌊50 · 14/25⌋
        (12, 24),  # ⌊50 · 12/25⌋
        (20, 8),  # ⌊50 · 4/25⌋
        (22, 4),  # ⌊50 · 2/25⌋
        (23, 2),  # ⌊50 · 1/25⌋
        (24, 1),  # ⌊0⌋ = 0, clipped up to 1
        (25, 1),  # after the ramp: only the initial condition
        (100, 1),
    ],
)
def test_paper_schedule_T50_R25(epoch, expected):
    assert teacher_frames(epoch, 50, 25) == expected


def test_odd_lengths_floor_and_clip():
    # T = 7, R = 25: e = 0 -> ⌊7·24/25⌋ = ⌊6.72⌋ = 6 = T − 1; e = 3 -> ⌊7·21/25⌋ = ⌊5.88⌋ = 5;
    # e = 21 -> ⌊7·3/25⌋ = ⌊0.84⌋ = 0 -> 1
    assert [teacher_frames(e, 7, 25) for e in (0, 3, 21)] == [6, 5, 1]
    # clip at T − 1: R = 100, e = 0 -> ⌊10·99/100⌋ = 9 = T − 1; T = 2 is always 1 (one step, from φ_0)
    assert teacher_frames(0, 10, 100) == 9
    assert schedule(30, 2, 25) == [1] * 30


def test_schedule_is_non_increasing_and_in_range():
    s = schedule(40, 50, 25)
    assert len(s) == 40 and s[0] == 48 and s[-1] == 1
    assert all(a >= b for a, b in zip(s, s[1:]))
    assert all(1 <= v <= 49 for v in s)
    assert s[24:] == [1] * 16


def test_no_ramp_means_free_running():
    assert schedule(5, 50, 0) == [1] * 5


@pytest.mark.parametrize("args", [(-1, 50, 25), (0, 1, 25), (0, 50, -1), (0.5, 50, 25), (True, 50, 25)])
def test_bad_arguments(args):
    with pytest.raises(ValueError):
        teacher_frames(*args)
