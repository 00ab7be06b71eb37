"""Domain decomposition with halos (issue 29 item 4): the reach of one step (metadata ``halo``), and
subdomain steps with ghost layers equal to the whole-box rollout, for every shipped model."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from export.runtime import Rollout
from export.runtime.halo import ghosted
from export.runtime.spec import halo_cells

ROOT = Path(__file__).resolve().parents[1]
MODELS = sorted(p.name for p in (ROOT / "models").glob("*.onnx"))


@pytest.fixture(scope="module", params=MODELS)
def model(request):  # the reach test runs on every shipped model (< 1 s each)
    return Rollout(ROOT / "models" / request.param, providers="cpu", threads=2)


def _state(r, shape, seed):
    rng = np.random.default_rng(seed)
    phi = (0.5 + 0.2 * rng.standard_normal((1, 1, *shape))).astype(np.float32)
    h1, h2 = (0.5 * rng.standard_normal((1, r.hidden_channels, *shape)).astype(np.float32) for _ in range(2))
    return phi, h1, h2


def _run(r, phi, h1, h2):
    return r.session.run(["phi_next", "h1_next", "h2_next"], {"phi": phi, "h1": h1, "h2": h2})


def _reach(diff, centre, far):
    """Largest Chebyshev distance from ``centre`` of a voxel where diff (X, Y, Z) is above round-off.

    A conservative model removes the volume mean of its flux, so a local change moves φ′ everywhere by
    round-off (~1e-7); "above round-off" is 4x the largest change farther than ``far`` (exact zeros
    elsewhere: any change counts)."""
    dist = np.abs(np.indices(diff.shape) - centre).max(axis=0)
    noise = diff[dist > far].max()
    idx = np.argwhere(diff > 4 * noise)
    return int(dist[tuple(idx.T)].max()) if len(idx) else -1


def test_halo_is_the_reach_of_one_step(model):
    """Perturb one voxel of each input (by 5, all channels): the farthest output voxel that changes is
    halo_cells away."""
    r = model
    k = r.kernel
    rr = k // 2
    assert r.halo == 5 * rr + (1 if r.metadata["conservative"] else 0) == halo_cells(r.metadata)
    n = 2 * r.halo + 7
    c = n // 2
    base = _state(r, (n, n, n), 0)
    out0 = _run(r, *base)
    reach = {}
    for i, name in enumerate(("phi", "h1", "h2")):
        moved = [a.copy() for a in base]
        moved[i][0, :, c, c, c] += 5.0  # every channel of one voxel: the far edge stands 25x above round-off
        out = _run(r, *moved)
        for o, oname in enumerate(("phi_next", "h1_next", "h2_next")):
            diff = np.abs(out[o] - out0[o]).max(axis=(0, 1))
            reach[name, oname] = _reach(diff, c, r.halo + 1)
    cons = 1 if r.metadata["conservative"] else 0
    assert reach["phi", "phi_next"] == 5 * rr + cons and reach["h1", "phi_next"] == 5 * rr + cons
    assert reach["h2", "phi_next"] == 3 * rr + cons
    assert reach["phi", "h1_next"] == reach["h1", "h1_next"] == 2 * rr and reach["h2", "h1_next"] == -1
    assert reach["phi", "h2_next"] == reach["h1", "h2_next"] == 4 * rr and reach["h2", "h2_next"] == 2 * rr
    assert max(reach.values()) == r.halo


def _decomposed_rollout(r, phi, splits, steps, halo, step):
    """``steps`` steps of the periodic box phi (1, 1, X, Y, Z), split into blocks; ghosts from the box."""
    X, Y, Z = phi.shape[2:]
    size = (X // splits[0], Y // splits[1], Z // splits[2])
    h1 = np.zeros((1, r.hidden_channels, X, Y, Z), np.float32)
    h2 = np.zeros_like(h1)
    for _ in range(steps):
        new = [np.empty_like(a) for a in (phi, h1, h2)]
        for block in itertools.product(*(range(s) for s in splits)):
            lo = [b * s for b, s in zip(block, size)]
            ins = [ghosted(a, lo, size, halo) for a in (phi, h1, h2)]
            outs = step(*ins, halo)
            sl = (slice(None), slice(None), *(slice(o, o + s) for o, s in zip(lo, size)))
            for dst, out in zip(new, outs):
                dst[sl] = out
        phi, h1, h2 = new
    return phi


def _crop_step(r):
    """the bare graph on a block, interiors cut off: any halo (for halo - 1)"""

    def step(phi, h1, h2, halo):
        out = _run(r, phi, h1, h2)
        return [o[:, :, halo:-halo, halo:-halo, halo:-halo] for o in out]

    return step


#: the default suite runs one case (~15 s on 2 cores); every shipped model and both splits: -m slow (~4 min)
CASES = [
    pytest.param(m, s, marks=() if (m, s) == ("crnn.onnx", (2, 1, 1)) else pytest.mark.slow)
    for m in MODELS
    for s in ((2, 1, 1), (2, 2, 2))
]
_WHOLE = {}


@pytest.mark.parametrize("name, splits", CASES)
def test_subdomains_equal_the_whole_box(name, splits):
    """24^3 box, 20 steps: subdomains with the model's halo match the whole-box rollout to 2e-6; halo - 1 does not.

    The start is a sharp random two-phase mixture (φ mostly 0 or 1): the outermost ghost layer then
    matters most (with halo - 1 the block's own wrap-around stands there)."""
    r = Rollout(ROOT / "models" / name, providers="cpu", threads=2)
    rng = np.random.default_rng(5)
    phi0 = np.clip(0.5 + rng.standard_normal((1, 1, 24, 24, 24)), 0, 1).astype(np.float32)
    if name not in _WHOLE:
        _WHOLE[name] = list(r.rollout(phi0, steps=20, every=20))[-1]
    whole = _WHOLE[name]
    split = _decomposed_rollout(r, phi0, splits, 20, r.halo, r.step_halo)
    short = _decomposed_rollout(r, phi0, splits, 20, r.halo - 1, _crop_step(r))
    err, err_short = np.abs(split - whole).max(), np.abs(short - whole).max()
    print(f"{name} {splits}: halo {r.halo}: {err:.2e}, halo - 1: {err_short:.2e}")
    assert err <= 2e-6
    assert err_short > 1e-5


def test_step_halo_layouts_and_refusals():
    r = Rollout(ROOT / "models" / "crnn.onnx", providers="cpu", threads=1)
    g = r.halo
    phi, h1, h2 = _state(r, (6 + 2 * g, 7 + 2 * g, 8 + 2 * g), 3)
    p5, a5, b5 = r.step_halo(phi, h1, h2)
    assert p5.shape == (1, 1, 6, 7, 8) and a5.shape == (1, 10, 6, 7, 8)
    p3, a4, b4 = r.step_halo(phi[0, 0], h1[0], h2[0])
    assert p3.shape == (6, 7, 8) and np.array_equal(p3, p5[0, 0]) and np.array_equal(b4, b5[0])
    full = _run(r, phi, h1, h2)[0][:, :, g:-g, g:-g, g:-g]
    assert np.array_equal(p5, full)
    with pytest.raises(ValueError, match="less than the model's halo 6"):
        r.step_halo(phi, h1, h2, g - 1)
    small = _state(r, (5 + 2 * g, 7 + 2 * g, 8 + 2 * g), 3)
    with pytest.raises(ValueError, match="smaller than the halo 6"):
        r.step_halo(*small)
    bad = phi.copy()
    bad[0, 0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="phi contains NaN or Inf"):
        r.step_halo(bad, h1, h2)
    with pytest.raises(ValueError, match="h1 .* must be"):
        r.step_halo(phi, h1[:, :, :-1], h2)


def test_halo_metadata_fallback():
    """files exported before the key: computed from kernel and conservative; the key wins when present"""
    assert halo_cells({"kernel": 3, "conservative": True}) == 6
    assert halo_cells({"kernel": 5, "conservative": False}) == 10
    assert halo_cells({"kernel": 3, "conservative": True, "halo": 9}) == 9


def test_mpi_example():
    """examples/mpi_halo.py under `mpiexec -n 2` (MPICH and mpi4py from PyPI, the `mpi` extra): two ranks,
    one halo exchange per step, equal to the whole-box rollout (the example exits 1 beyond 2e-6)."""
    mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        mpiexec = None
    if mpiexec is None:
        reason = "no mpi4py / mpiexec: pip install -e '.[mpi]' (MPICH and mpi4py from PyPI)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    cmd = [
        mpiexec,
        "-n",
        "2",
        sys.executable,
        str(ROOT / "examples" / "mpi_halo.py"),
        str(ROOT / "models" / "crnn.onnx"),
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 ranks, 24^3 network grid, halo 6, 20 steps" in r.stdout
    assert float(r.stdout.split("whole box ")[1].split()[0]) <= 2e-6
