"""
A first solver run
==================

Evolve a small random field and plot the free energy (placeholder, replaced by the tutorials).
"""

import matplotlib.pyplot as plt
import numpy as np

import ch_numba

p = ch_numba.CHParams(epsilon=1.5, dt=4e-3)
phi = ch_numba.initial.perlin((16, 16, 16), frequency=4, seed=1, mean=0.5)
F = [ch_numba.free_energy(phi, p)]
for _ in range(5):
    phi = ch_numba.evolve(phi, steps=100, params=p)
    F.append(ch_numba.free_energy(phi, p))
plt.plot(np.arange(len(F)) * 100 * p.dt, F, "o-")
plt.xlabel("t")
plt.ylabel("F")
