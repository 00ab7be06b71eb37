"""Write the small example inputs docs/usage.md's commands use: a closed surface and a field.

    examples/peanut.stl    a closed, low-poly triangle mesh (320 faces, binary STL, ~16 KB): a unit
                           icosphere (2 subdivisions) with each vertex moved to radius 0.7 + 0.5 x²
                           along its direction, a peanut 2.4 long with a waist; for ``--ic mesh``
    examples/gyroid32.npy  a 32³ float32 field (np.save, 128 KiB): φ = 0.5 + 0.25 g / max|g| with the
                           gyroid g = sin X cos Y + sin Y cos Z + sin Z cos X, X = 2π i / 32 (periodic,
                           mean φ = 0.5 to round-off); for ``--ic npy``

Both are deterministic: the files in the repository are this script's output (a test checks it).
The mesh stands in for the paper's Stanford bunny, which is not shipped; any closed STL/OBJ/PLY
surface works the same way (``--ic mesh --ic-file YOUR.stl``).

Usage:  python examples/make_inputs.py [--out-dir examples] [--overwrite]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MESH_NAME, FIELD_NAME = "peanut.stl", "gyroid32.npy"


def peanut():
    """The peanut mesh (a trimesh.Trimesh, watertight)."""
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
    v = np.asarray(sphere.vertices, dtype=np.float64)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    radius = 0.7 + 0.5 * v[:, :1] ** 2
    return trimesh.Trimesh(vertices=v * radius, faces=np.asarray(sphere.faces), process=False)


def gyroid(n: int = 32) -> np.ndarray:
    """The gyroid field on an n³ periodic grid, float32 (X, Y, Z)."""
    x = 2 * np.pi * np.arange(n) / n
    X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
    g = np.sin(X) * np.cos(Y) + np.sin(Y) * np.cos(Z) + np.sin(Z) * np.cos(X)
    return (0.5 + 0.25 * g / np.abs(g).max()).astype(np.float32)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description="Write docs/usage.md's example inputs: a closed mesh (peanut.stl) and a 32³ field (gyroid32.npy)."
    )
    p.add_argument("--out-dir", type=Path, default=HERE, help="folder to write them into (default: examples/)")
    p.add_argument("--overwrite", action="store_true", help="replace files that exist (default: refuse)")
    a = p.parse_args(argv)
    mesh_path, field_path = a.out_dir / MESH_NAME, a.out_dir / FIELD_NAME
    existing = [str(f) for f in (mesh_path, field_path) if f.exists()]
    if existing and not a.overwrite:
        print(f"error: {', '.join(existing)} already exist(s); pass --overwrite to replace", file=sys.stderr)
        return 2
    a.out_dir.mkdir(parents=True, exist_ok=True)
    peanut().export(mesh_path, file_type="stl")
    np.save(field_path, gyroid())
    print(f"wrote {mesh_path} and {field_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
