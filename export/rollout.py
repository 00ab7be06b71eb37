"""``python -m export.rollout MODEL.onnx --ic perlin --size 64 --steps 10000 --every 100 --out run.h5``.

A surrogate rollout written in the ground truth's HDF5 layout (ch_numba.dataset: root attribute
format="ch3d-dataset", one sequence), so ``ch_numba.open_dataset``, ``python -m ch_numba info`` /
``render`` and the evaluation tools read it like a solver run. No PyTorch.

* The initial condition is made at the ground-truth resolution (``--size`` is the ground-truth
  grid edge, as in ``python -m ch_numba simulate``) and downscaled by the model's factor f
  (every f-th voxel); frame 0 is the IC.
* Frames are stored at the network's resolution (grid spacing dx_stored = f · dx), or, with
  ``--full-resolution``, upscaled back (each voxel repeated f³ times, dx_stored = dx; frame 0 is
  then the full-resolution IC itself).
* ``--steps`` and ``--every`` count network steps. Frame k is the field after k · every network
  steps; one network step is ``stride`` saved frames of the training data (the metadata's
  ``stride``: 1 unless the model was trained with ``train --stride``), i.e. the metadata's
  ``steps_per_frame`` solver steps, so the root attribute ``steps_per_frame`` is
  every · steps_per_frame (solver steps between stored frames) and
  ``time[k] = k · every · steps_per_frame · dt``.
* The runner is anything with :class:`export.runtime.Rollout`'s interface (``factor``, ``kernel``,
  ``metadata``, ``path``, ``backend``, ``downscale``/``upscale``, ``rollout``): the ONNX runtime
  here, :class:`surrogate.runner.TorchRunner` for ``python -m surrogate rollout CHECKPOINT.pt``,
  which shares this writer and these arguments (:func:`add_rollout_arguments`, :func:`run_from_args`).
  This module imports onnxruntime only to build an ONNX runner.
* ``free_energy`` (per volume, float64, with dx_stored) and ``phi_mean`` are stored per frame and
  logged every tenth of the run; the file is written under a temporary name and renamed when the
  run finished (nothing is left at OUT after a failure). A non-finite field stops the run. An
  existing OUT is refused unless ``--overwrite``.
* φ outside :data:`PHYSICAL_RANGE` (the solver's, :data:`ch_numba.solver.PHYSICAL_RANGE`: one definition)
  means the surrogate has left its training regime: the writer warns once; the report and
  docs/probe_stability.py count the first such step.
* ``--ic h5``: the data set's physics (:func:`dataset_physics`) is passed to ``Rollout(..., physics=...)``,
  which warns when it differs from the model's training data.
* No-flux walls: ``--boundary periodic|neumann|X,Y,Z`` (default: the IC data set's boundary for ``--ic h5``,
  else periodic; :func:`rollout_boundary`, which refuses in one line a value that contradicts the IC file's).
  The runner steps that box (``Rollout(..., boundary=...)``: mirror padding on wall axes; a graph exported
  before walls is refused in one line), the IC is made for it (Perlin noise not periodic along walls) and
  downscaled with block means along wall axes, and the file records it like a solver run (root attribute
  ``boundary``, ``format_version`` 2; its free energy with the wall physics), so ``info``, ``render`` and
  ``merge`` read it. ``--size X,Y,Z`` makes a box that is not a cube (a film).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ch_numba import cli_runner, provenance
from ch_numba.dataset.layout import STORAGES
from ch_numba.files import check_output
from ch_numba.initial.arguments import add_ic_arguments, ic_options
from ch_numba.locks import output_lock
from ch_numba.options import add_options, check_seed, check_threads, from_args, grid_shape, grid_text, option
from ch_numba.params import boundary_argument, boundary_text, parse_boundary
from ch_numba.solver import (
    PHYSICAL_RANGE,
    check_memory,
)

from .runtime.grid import network_grid
from .runtime.runner_base import check_counts

if TYPE_CHECKING:
    from .runtime import Rollout

log = logging.getLogger("export.rollout")

EXAMPLES = """examples:
  python -m export.rollout model.onnx --ic perlin --size 64 --steps 10000 --every 100 --out rollout64.h5
  python -m export.rollout model.onnx --ic mesh --ic-file examples/peanut.stl --size 64 --steps 500 --every 10 \\
      --out peanut_rollout.h5
  python -m export.rollout model.onnx --ic npy --ic-file examples/gyroid32.npy --steps 500 --every 10 \\
      --out gyroid_rollout.h5
  python -m export.rollout model.onnx --ic h5 --ic-file data.h5 --ic-sequence 3 --steps 49 --out pred.h5
  python -m export.rollout model.onnx --ic h5 --ic-file film.h5 --steps 49 --out film_roll.h5   # its walls
  python -m export.rollout model.onnx --ic perlin --size 64,64,32 --boundary periodic,periodic,neumann \
      --steps 1000 --every 10 --out film_roll.h5
  python -m ch_numba info rollout64.h5

With --ic h5 the data set's physics (epsilon, M, W, dx, time per frame) is checked against the model's
training data: a difference is reported in a warning (the rollout still runs).
"""


@dataclasses.dataclass(frozen=True)
class RolloutConfig:
    """What a surrogate rollout file holds (stored as JSON in the root attribute ``config``); the numbers are
    also the options of both rollout commands (:mod:`ch_numba.options`)."""

    model: str
    ic: dict
    steps: int = option(
        100,
        "network steps, each `stride` saved frames of the training data (the model's metadata; 1 unless "
        "trained with --stride) (default %(default)s)",
    )
    every: int = option(1, "store a frame every this many network steps (default %(default)s)")
    full_resolution: bool = option(
        False, "store frames upscaled to the ground-truth grid (default: the network's grid)", action="store_true"
    )
    storage: str = option("lzf", "HDF5 storage of phi (default %(default)s)", choices=STORAGES)

    def __post_init__(self):
        check_counts(self.steps, self.every, "--")  # the runners' rollout check, the one definition
        from ch_numba.dataset import storage_options

        storage_options(self.storage)

    @property
    def frames(self) -> int:
        """Stored frames: the IC and every every-th step."""
        return self.steps // self.every + 1


def initial_condition(
    kind: str,
    size,
    *,
    seed: int = 7,
    frequency: int = 4,
    mean: float = 0.5,
    amplitude: float = 0.1,
    ic_file=None,
    ic_sequence: int = 0,
    ic_frame: int = 0,
    boundary=None,
):
    """(φ0 at ground-truth resolution (X, Y, Z) float32, JSON-able IC description) by ch_numba.initial.

    ``size``: a grid edge N (N³) or (X, Y, Z). ``boundary`` (None: periodic): the box's, for the ICs that depend
    on it (Perlin noise is not periodic along walls); for ``--ic h5`` it must be the data set's (one-line
    ValueError otherwise: :func:`rollout_boundary`)."""
    from ch_numba import initial

    shape = grid_shape(size) if isinstance(size, (tuple, list)) else None
    if shape is None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"--size must be a positive integer or X,Y,Z, got {size!r}")
    shape = shape or (size,) * 3
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"--size must be a positive integer or X,Y,Z, got {size!r}")
    seed = check_seed(seed)
    options = ic_options(
        kind,
        mean=mean,
        amplitude=amplitude,
        frequency=frequency,
        ic_file=ic_file,
        ic_sequence=ic_sequence,
        ic_frame=ic_frame,
    )
    if kind == "h5":  # the box of a data-set frame is the data set's
        boundary = _ic_boundary(options["path"], boundary)
    boundary = parse_boundary("periodic" if boundary is None else boundary)
    phi0 = initial.make(kind, shape, seed=seed, boundary=boundary, **options)
    return np.asarray(phi0, dtype=np.float32), {"kind": kind, "seed": seed, **options}


def _ic_boundary(path, wanted=None) -> tuple:
    """The boundary of the data set ``path`` (an --ic h5 file); ValueError (one line) if ``wanted`` (not None)
    says otherwise."""
    from ch_numba.dataset import open_dataset

    with open_dataset(path) as ds:
        theirs = tuple(ds.params.boundary)
    if wanted is not None and tuple(parse_boundary(wanted)) != theirs:
        raise ValueError(
            f"--boundary {boundary_text(wanted)} contradicts the initial condition's data set {path}, whose boundary "
            f"is {boundary_text(theirs)}; leave --boundary out to roll out on the data set's box"
        )
    return theirs


def rollout_boundary(a: argparse.Namespace) -> tuple:
    """The box of a rollout command (``--boundary``; module docstring): the explicit value, else the IC data set's
    for ``--ic h5``, else periodic. ValueError (one line) when an explicit value contradicts the IC file's."""
    wanted = getattr(a, "boundary", None)
    if a.ic == "h5" and a.ic_file is not None:
        return _ic_boundary(a.ic_file, wanted)
    return parse_boundary("periodic" if wanted is None else wanted)


def _physics(meta: dict, dx: float, boundary=None):
    """The training data's CHParams (physics and scheme) at grid spacing ``dx`` on the rollout's box
    ``boundary`` (None: periodic)."""
    import ch_numba

    return ch_numba.CHParams.from_metadata(meta, dx=float(dx), boundary=parse_boundary(boundary or "periodic"))


def write_rollout(
    runner: Rollout,
    phi0_full,
    out,
    config: RolloutConfig,
    *,
    seed: int = 0,
    command: str = "",
    progress: bool | None = None,
    overwrite: bool = False,
) -> Path:
    """Roll the surrogate out from φ0 (ground-truth resolution) and write the data-set file ``out``.

    Parameters
    ----------
    runner : Rollout, or an object with its interface (module docstring)
    phi0_full : array (X, Y, Z), the IC at the ground-truth resolution (divisible by the factor).
    out : path of the .h5 file (its folder must exist; an existing file is refused unless ``overwrite``).
    config : RolloutConfig
    seed : stored as the sequence's seed; command: stored for provenance.
    progress : tqdm bar (None: only on a terminal).

    Returns the path. Raises ValueError for bad input, RuntimeError if the field turns non-finite.
    """
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from ch_numba.dataset import SequenceFile, root_attrs

    out = check_output(out, overwrite)
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise ValueError(f"folder {out.parent} does not exist")
    phi0_full = np.asarray(phi0_full)
    f = runner.factor
    if phi0_full.ndim != 3:
        raise ValueError(f"expected the initial condition of shape (X, Y, Z), got {phi0_full.shape}")
    network_grid(phi0_full.shape, f, runner.kernel, what="the ground-truth grid")
    phi0 = runner.downscale(phi0_full)
    meta = runner.metadata
    first = phi0_full if config.full_resolution else phi0
    shape = first.shape
    dx = float(meta.get("dx", 1.0)) * (1 if config.full_resolution else f)
    params = _physics(meta, dx, getattr(runner, "boundary", None))  # the file's boundary is the runner's box
    spf = config.every * int(meta["steps_per_frame"])
    n_frames = config.frames
    backend = runner.backend
    attrs = {  # the data-set layout's root attributes (one definition, ch_numba.dataset), then the rollout's own
        **root_attrs(
            params,
            n_frames,
            spf,
            shape,
            "float32",
            config.storage,
            backend,
            command,
            json.dumps(dataclasses.asdict(config), sort_keys=True),
        ),
        "source": "surrogate",
        "model": str(runner.path),
        "model_metadata": json.dumps(meta, sort_keys=True),
        "network_steps_per_frame": config.every,
        "downscale": f,
        "resolution": "full" if config.full_resolution else "network",
    }
    log_every = max(1, (n_frames - 1) // 10)
    t_start = time.perf_counter()
    warned = False

    def record(k: int, phi: np.ndarray, writer: SequenceFile) -> None:
        nonlocal warned
        if not np.all(np.isfinite(phi)):
            raise RuntimeError(f"surrogate rollout blew up: frame {k} (step {k * config.every}) is not finite")
        lo, hi = float(phi.min()), float(phi.max())
        if not warned and not (PHYSICAL_RANGE[0] <= lo and hi <= PHYSICAL_RANGE[1]):
            log.warning(
                "frame %d: phi in [%.3g, %.3g], far outside [0, 1]: the surrogate is out of its training regime",
                k,
                lo,
                hi,
            )
            warned = True
        writer.add(k, phi)  # the frame, its mass and free energy (per volume, with dx_stored)
        masses, energies = writer.masses, writer.energies
        if k % log_every == 0 or k == n_frames - 1:
            rate = k * config.every / max(time.perf_counter() - t_start, 1e-9)
            log.info(
                "frame %*d/%d  t = %-10.6g F = %.6g  mean phi = %.6f (drift %+.2e)%s",
                len(str(n_frames - 1)),
                k,
                n_frames - 1,
                k * spf * params.dt,
                energies[k],
                masses[k],
                masses[k] - masses[0],
                f"  {rate:.1f} steps/s" if k else "",
            )

    log.info(
        "rollout: %s on %s (%s), IC %s at %s -> network grid %s, %d steps, a frame every %d (%d frames, t_end = %g)",
        runner.path.name,
        backend,
        f"downscale {f}",
        config.ic.get("kind"),
        "x".join(map(str, phi0_full.shape)),
        "x".join(map(str, phi0.shape)),
        config.steps,
        config.every,
        n_frames,
        config.steps * int(meta["steps_per_frame"]) * params.dt,
    )
    # one run at a time on OUT (ch_numba.locks): a second rollout into it is refused naming this one, and the
    # output is checked again under the lock; SIGTERM/Ctrl-C delete the temporary file (cli_runner)
    with output_lock(out, f"a rollout into {out}", command):
        check_output(out, overwrite)
        # the solver's sequence writer (layout, per-frame mass and F, atomic rename): nothing at OUT unless the
        # run finished
        writer = SequenceFile(
            out,
            params,
            frames=n_frames,
            steps_per_frame=spf,
            shape=shape,
            backend=backend,
            dtype="float32",
            storage=config.storage,
            seed=seed,
            ic=config.ic,
            burn_in=0,
            split="val",
            attrs=attrs,
            overwrite=overwrite,
        )
        try:
            record(0, np.ascontiguousarray(first, dtype=np.float32), writer)
            with (
                tqdm(
                    total=config.steps,
                    unit="step",
                    disable=None if progress is None else not progress,
                    desc=out.name,
                    dynamic_ncols=True,
                ) as bar,
                logging_redirect_tqdm(),
            ):
                for k, phi in enumerate(runner.rollout(phi0, config.steps, every=config.every), start=1):
                    record(k, runner.upscale(phi) if config.full_resolution else phi, writer)
                    bar.update(config.every)
            writer.commit()
        finally:
            writer.abort()
    masses, energies = writer.masses, writer.energies
    elapsed = time.perf_counter() - t_start
    drift = float(np.max(np.abs(masses - masses[0])))
    log.info(
        "wrote %s: %d frames of %s, F %.6g -> %.6g, max mass drift %.2e, %.1f s (%.1f steps/s)",
        out,
        n_frames,
        "x".join(map(str, shape)),
        energies[0],
        energies[-1],
        drift,
        elapsed,
        config.steps / max(elapsed, 1e-9),
    )
    return out


def add_rollout_arguments(p: argparse.ArgumentParser, model_help: str) -> None:
    """The arguments of both rollout commands: model, --out, the IC, and RolloutConfig's options (--steps,
    --every, --full-resolution, --storage).

    The runner's own options (--providers / --device, --threads) are the caller's."""
    p.add_argument("model", type=Path, help=model_help)
    p.add_argument("--out", type=Path, required=True, help="output .h5 file (refused if it exists, unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists (default: refuse)")
    add_options(p, RolloutConfig)
    add_ic_arguments(
        p.add_argument_group("initial condition (made at ground-truth resolution, then downscaled)"),
        None,
        "ground-truth grid edge L (L^3 voxels) or X,Y,Z (default: the model's training grid, else 64; ignored for "
        "npy/h5 ICs)",
        boxes=True,
    )
    p.add_argument(
        "--boundary",
        type=boundary_argument,
        default=None,
        metavar="periodic|neumann|X,Y,Z",
        help="the box: periodic, neumann (no-flux walls on every axis) or one per axis x,y,z, e.g. "
        "periodic,periodic,neumann for a film (default: the --ic h5 data set's, else periodic)",
    )


def config_from_args(a: argparse.Namespace) -> RolloutConfig:
    """Check the output path and the numbers (before any model is loaded); the IC is filled in later."""
    check_output(a.out, a.overwrite)
    check_seed(a.seed)
    check_threads(a.threads)
    return from_args(RolloutConfig, a, model=str(a.model), ic={})


def run_from_args(a: argparse.Namespace, runner, config: RolloutConfig, command: str) -> Path:
    """Make the IC the arguments ask for (at the ground-truth grid) and write the rollout with ``runner``."""
    size = a.size
    origin = f"--size {size if isinstance(size, int) or size is None else ','.join(map(str, size))}"
    if size is None:
        grid = runner.metadata.get("train_grid")
        box = isinstance(grid, (list, tuple)) and len(grid) == 3
        if box and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in grid):  # not a cube
            size, origin = tuple(grid), f"the model's training grid {','.join(map(str, grid))} (--size chooses another)"
        elif grid is None or isinstance(grid, (list, tuple)):  # unknown
            size, origin = 64, "the default --size 64"
        elif isinstance(grid, int) and not isinstance(grid, bool) and grid >= 1:
            size, origin = grid, f"the model's training grid {grid} (metadata train_grid; --size chooses another)"
        elif a.ic not in ("npy", "h5"):
            raise ValueError(
                f"{a.model}: metadata train_grid={grid!r} is not a positive grid edge, so it cannot be the default "
                "--size; give --size"
            )
        else:  # npy/h5 ICs bring their own grid
            size, origin = 64, "the default --size 64"
    if a.ic not in ("npy", "h5"):
        shape = grid_shape(size)
        if any(n % runner.factor for n in shape):
            raise ValueError(f"{origin} is not divisible by the model's downscale factor {runner.factor}")
        # the IC (float64 noise, float32 field) and, with --full-resolution, a float32 frame at the full grid
        check_memory(int(np.prod(shape)) * (8 + 4 + 4), f"a rollout from a {grid_text(size)} initial condition")
    phi0, ic = initial_condition(
        a.ic,
        size,
        seed=a.seed,
        frequency=a.frequency,
        mean=a.mean,
        amplitude=a.amplitude,
        ic_file=a.ic_file,
        ic_sequence=a.ic_sequence,
        ic_frame=a.ic_frame,
        boundary=getattr(runner, "boundary", None),  # the runner's box (rollout_boundary)
    )
    return write_rollout(
        runner, phi0, a.out, dataclasses.replace(config, ic=ic), seed=a.seed, command=command, overwrite=a.overwrite
    )


def dataset_physics(path) -> dict:
    """The ground truth's physics of the data set ``path`` as ``Rollout(physics=...)`` takes it: epsilon,
    mobility, W, dx, dt, steps_per_frame. A surrogate rollout file (``source="surrogate"``) stores frames
    at the network's grid and ``network_steps_per_frame`` network steps apart: its ground-truth dx and
    steps per frame are given back. Errors on an unreadable file are one line (ValueError)."""
    from ch_numba.dataset import open_dataset

    with open_dataset(path) as ds:
        p, attrs = ds.params, dict(ds.attrs)
    physics = {
        "epsilon": p.epsilon,
        "mobility": p.mobility,
        "W": p.W,
        "dx": p.dx,
        "dt": p.dt,
        "steps_per_frame": int(attrs["steps_per_frame"]),
    }
    if attrs.get("source") == "surrogate":
        try:
            if attrs.get("resolution") == "network":
                physics["dx"] /= int(attrs["downscale"])
            physics["steps_per_frame"] /= int(attrs["network_steps_per_frame"])
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            raise ValueError(
                f"{path}: a surrogate rollout file without valid downscale/network_steps_per_frame attributes"
            ) from None
    return physics


def _surrogate_file(path) -> bool:
    """Whether ``path`` is a surrogate rollout (its steps_per_frame counts a model's network steps)."""
    from ch_numba.dataset import open_dataset

    with open_dataset(path) as ds:
        return ds.attrs.get("source") == "surrogate"


def build_parser() -> argparse.ArgumentParser:
    from .runtime.spec import PROVIDERS  # stdlib only: the parser does not load onnxruntime

    p = cli_runner.ArgumentParser(
        prog="python -m export.rollout",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Roll out an exported surrogate (ONNX, no PyTorch) from an initial condition and write the "
        "frames in the ground truth's HDF5 data-set layout (one sequence).",
    )
    add_rollout_arguments(p, "ONNX model written by `python -m export`, or a shipped model's name (crnn64, crnn, ...)")
    p.add_argument(
        "--providers",
        choices=PROVIDERS,
        default="auto",
        help="onnxruntime provider (default %(default)s: CUDA if usable, else CPU)",
    )
    p.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _main(argv=None) -> int:
    from .runtime import Rollout

    a = build_parser().parse_args(argv)
    cli_runner.setup_logging(a.verbose)
    command = provenance.command_line("python -m export.rollout", argv)
    config = config_from_args(a)  # checks the numbers first
    # --ic h5: the data set's physics, so that the runtime warns when it differs from the model's training data
    physics = dataset_physics(a.ic_file) if a.ic == "h5" and a.ic_file is not None else None
    # the box (--boundary, else the IC data set's): a graph that pads periodically only is refused for walls
    runner = Rollout(a.model, providers=a.providers, threads=a.threads, boundary=rollout_boundary(a))
    if physics is not None:
        if runner.stride > 1 and not _surrogate_file(a.ic_file):
            physics["steps_per_frame"] *= runner.stride  # a stride-k model's step is k stored frames of the data
        runner.check_physics(physics)
    run_from_args(a, runner, config, command)
    return 0


def main(argv=None) -> int:
    return cli_runner.run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
