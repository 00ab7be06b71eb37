"""Numba's compiled kernels are cached on disk (physics.kernel_jit): a second process loads them instead of
compiling (the CPU kernels are closures built per dtype, which Numba's cache misses unless the dispatchers
they close over pickle alike in every process); without a writable cache folder nothing fails."""

import json
import logging
import os
import subprocess
import sys

import numpy as np

PROBE = """
import hashlib, json
import ch_numba
from ch_numba import initial, kernels_cpu, spectral
phi0 = initial.perlin((8, 8, 8), frequency=2, seed=1)
phi = ch_numba.evolve(phi0, 20, ch_numba.CHParams(), backend="cpu")
F = ch_numba.free_energy(phi, ch_numba.CHParams())
phs = ch_numba.evolve(phi0, 3, ch_numba.CHParams(scheme="spectral", dt=0.5), backend="cpu")
fused = kernels_cpu.kernels(phi.dtype)[2]
kernels = {"fused_steps": fused, "plane_energy": kernels_cpu._plane_energy,
           "spectral_update2": spectral._kernels(phi.dtype)[2]}
print(json.dumps({"hits": {k: sum(d.stats.cache_hits.values()) for k, d in kernels.items()},
                  "misses": {k: sum(d.stats.cache_misses.values()) for k, d in kernels.items()},
                  "digest": hashlib.sha256(phi.tobytes() + phs.tobytes()).hexdigest(), "F": F}))
"""


def _run(cache_dir):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir), "NUMBA_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_a_second_process_loads_the_kernels_from_the_cache(tmp_path):
    first, second = _run(tmp_path / "cache"), _run(tmp_path / "cache")
    assert all(n == 0 for n in first["hits"].values()) and all(n >= 1 for n in first["misses"].values())
    assert all(n >= 1 for n in second["hits"].values()), second  # the fused CPU kernel included
    assert all(n == 0 for n in second["misses"].values()), second
    assert second["digest"] == first["digest"] and second["F"] == first["F"]  # the cached code computes the same bits
    assert any((tmp_path / "cache").rglob("*.nbi"))


def test_no_writable_cache_folder_compiles_with_one_warning(monkeypatch, caplog):
    """Numba raises "no locator available" when no cache folder is writable (a read-only install and no
    home): kernel_jit then compiles without the cache, warns once per process, and computes as before."""
    from numba.core import config

    from ch_numba import physics

    # as NUMBA_CACHE_LOCATOR_CLASSES=UserProvidedCacheLocator NUMBA_CACHE_DIR=<a folder that cannot be made>
    monkeypatch.setattr(config, "CACHE_LOCATOR_CLASSES", "UserProvidedCacheLocator", raising=False)
    monkeypatch.setattr(config, "CACHE_DIR", "/dev/null/numba-cache")
    monkeypatch.setattr(physics, "_warned_no_cache", [])
    caplog.set_level(logging.WARNING, logger="ch_numba")

    def axpy(a, x, y):
        return a * x + y

    fns = [physics.kernel_jit("float32")(axpy), physics.kernel_jit("float64")(axpy)]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and warnings[0].startswith("warning: Numba finds no writable cache folder")
    x = np.arange(4, dtype=np.float32)
    for f in fns:
        np.testing.assert_array_equal(f(np.float32(2), x, x), 3 * x)
