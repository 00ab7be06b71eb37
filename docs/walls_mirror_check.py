r"""How far is a model's step on a box with walls from the mirror-doubled periodic box's? (issue 27)

    python docs/walls_mirror_check.py models/crnn64.pt models/crnn_paper.pt --steps 100

A box of N cells with no-flux walls along an axis is the periodic box of 2N cells holding the field and
its mirror image (surrogate/boundary.py). For each checkpoint (float64) and each boundary (walls along z;
along x, y, z), from the Perlin IC of seed 2024 on the model's network grid (its training box sampled as
the runtime does: block means along the walls), this rolls the model out ``--steps`` steps twice — on the
wall box (``CRNN.set_boundary``) and on the doubled periodic box, restricted to the first N — and prints
the largest difference of φ (and of the hidden states) after 1 step and over the run, the mass drift on
the wall box, and the mirror asymmetry of the doubled box's φ at the end (0 for an exactly
mirror-symmetric evolution). The cube-equivariant models give round-off; the paper's unconstrained
model, whose kernels are not mirror-symmetric, does not: its doubled box loses its mirror symmetry, and
the wall box is then a different (still mass-conserving) model of the walls.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from ch_numba import initial  # noqa: E402
from export.runtime.resample import downsample  # noqa: E402
from surrogate import load_checkpoint  # noqa: E402

BOUNDARIES = {"film (walls along z)": (2,), "box (walls along x, y, z)": (0, 1, 2)}


def doubled(x: torch.Tensor, axes) -> torch.Tensor:
    for a in axes:
        x = torch.cat([x, x.flip(a - 3)], dim=a - 3)
    return x


def check(path: str, steps: int, seed: int = 2024) -> list[dict]:
    ckpt = load_checkpoint(path)
    model = ckpt["model"].double().eval()
    size = int(ckpt.get("dataset", {}).get("shape", [64])[0]) if isinstance(ckpt.get("dataset"), dict) else 64
    factor = int(ckpt.get("downscale") or ckpt.get("train_config", {}).get("downscale", 2))
    rows = []
    for name, axes in BOUNDARIES.items():
        boundary = tuple("neumann" if a in axes else "periodic" for a in range(3))
        ic = initial.perlin((size,) * 3, frequency=3, seed=seed, mean=0.5, amplitude=0.1, boundary=boundary)
        phi = torch.from_numpy(downsample(ic, factor, boundary))[None, None].double()
        n = phi.shape[-3:]
        inner = (..., slice(0, n[0]), slice(0, n[1]), slice(0, n[2]))
        walls, big = phi, doubled(phi, axes)
        hw, hb = model.init_hidden(walls), model.init_hidden(big)
        first = worst = worst_h = 0.0
        with torch.no_grad():
            for k in range(steps):
                model.set_boundary(boundary)
                walls, *hw = model.step(walls, *hw)
                model.set_boundary(None)
                big, *hb = model.step(big, *hb)
                d = (walls - big[inner]).abs().max().item()
                worst = max(worst, d)
                worst_h = max(worst_h, max((a - b[inner]).abs().max().item() for a, b in zip(hw, hb)))
                first = d if k == 0 else first
        mirror = (big - doubled(big[inner], axes)).abs().max().item()
        drift = abs(walls.sum().item() - phi.sum().item()) / phi.sum().item()
        rows.append(
            {
                "model": path,
                "boundary": name,
                "grid": tuple(n),
                "first_step": first,
                "max_phi": worst,
                "max_hidden": worst_h,
                "mass_drift": drift,
                "mirror_asymmetry": mirror,
            }
        )
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("checkpoints", nargs="+", help="PyTorch checkpoints (.pt)")
    ap.add_argument("--steps", type=int, default=100, help="network steps (default 100)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    print(f"{'model':28s} {'boundary':27s} {'grid':12s} {'1 step':>9s} {'max phi':>9s} {'max h':>9s} "
          f"{'mass drift':>10s} {'asymmetry':>9s}")  # fmt: skip
    for path in a.checkpoints:
        for r in check(path, a.steps):
            print(
                f"{r['model']:28s} {r['boundary']:27s} {'x'.join(map(str, r['grid'])):12s} {r['first_step']:9.2e} "
                f"{r['max_phi']:9.2e} {r['max_hidden']:9.2e} {r['mass_drift']:10.1e} {r['mirror_asymmetry']:9.2e}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
