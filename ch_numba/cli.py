"""``python -m ch_numba {simulate,generate,merge,info,render}``: thin command-line front end.

Each subcommand parses its arguments, builds the configuration dataclasses and
calls the library (dataset/, initial/, render.py). Errors on bad input are one
line on stderr with exit status 2 (cli_runner.run).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .cli_runner import ArgumentParser, run, set_resume_hint, setup_logging
from .files import atomic_folder, check_output
from .initial.arguments import add_ic_arguments, ic_options_from_args
from .locks import output_lock, remove_stale_temps
from .options import add_options, check_seed, from_args, grid_shape, grid_text
from .params import CHParams
from .provenance import command_line
from .solver import BACKENDS, check_memory

log = logging.getLogger("ch_numba")

EXAMPLES = """examples:
  python -m ch_numba simulate perlin64.h5 --ic perlin --size 64 --frames 50 --steps-per-frame 400 --seed 7
  python -m ch_numba simulate eq.h5 --size 64 --scheme spectral --dt 1 --steps-per-frame 400 --frames 100
  python -m ch_numba simulate film.h5 --size 64,64,16 --boundary periodic,periodic,neumann --frames 50   # walls on z
  python -m ch_numba generate data.h5 --sequences 20 --frames 50 --steps-per-frame 400 --size 64 \\
      --burn-in-frames 10 --val-fraction 0.3 --seed 1 --backend auto
  python -m ch_numba generate paper64.h5 --sequences 1850 --frames 50 --size 64 --seed 1 --backend cuda --batch 32

  # data.h5's sequences made by 4 processes or machines (the same arguments + --shard i/4; here one Numba
  # thread each), then merged:
  python -m ch_numba generate sharded.h5 --sequences 20 --frames 50 --steps-per-frame 400 --size 64 \\
      --burn-in-frames 10 --val-fraction 0.3 --seed 1 --threads 1 --shard 0/4   # and 1/4, 2/4, 3/4 beside it
  python -m ch_numba merge sharded.h5

  python -m ch_numba info data.h5
  python -m ch_numba render data.h5 --sequence 0 --frames 0,-1 --out pictures/
"""


def _add_physics(p: argparse.ArgumentParser) -> None:
    add_options(p, CHParams)  # the groups "physics (grid units)" and "time integrator"


#: the options a run shares with a data set's generation, declared in DatasetConfig's fields
RUN_OPTIONS = ("frames", "steps_per_frame", "dtype", "storage")


def _add_run(p: argparse.ArgumentParser, only=RUN_OPTIONS) -> None:
    """The run's options: backend, threads and overwrite here, the others from DatasetConfig's fields
    (``only``: these; None: all of them, as ``generate`` has)."""
    from .dataset.generation import DatasetConfig  # numpy, numba: imported when the parser is built

    add_options(p, DatasetConfig, only=only)
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="solver backend (default %(default)s: cuda if a GPU is usable, else cpu)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads of the Numba kernels (default: all, NUMBA_NUM_THREADS); on a busy machine fewer "
        "threads than cores avoid oversubscription, which slows the kernel several-fold",
    )
    _add_overwrite(p)


def _add_overwrite(p: argparse.ArgumentParser, what: str = "the output file") -> None:
    p.add_argument("--overwrite", action="store_true", help=f"replace {what} if it exists (default: refuse)")


def physics_args(params: CHParams) -> list[str]:
    """The ``simulate``/``generate`` options that rebuild ``params`` (physics and scheme)."""
    args = [
        "--epsilon",
        repr(params.epsilon),
        "--mobility",
        repr(params.mobility),
        "--W",
        repr(params.W),
        "--dx",
        repr(params.dx),
        "--dt",
        repr(params.dt),
    ]
    if not params.periodic:
        args += ["--boundary", ",".join(params.boundary)]
    if params.scheme == "spectral":
        args += [
            "--scheme",
            "spectral",
            "--order",
            str(params.order),
            "--stabilization",
            repr(params.S),
            "--symbol",
            params.symbol,
        ]
    return args


def _params(a) -> CHParams:
    if a.scheme != "spectral":
        given = [f"--{k}" for k in ("order", "stabilization", "symbol") if getattr(a, k) != getattr(CHParams, k)]
        if given:
            raise ValueError(f"{given[0]} applies to --scheme spectral only")
    return from_args(CHParams, a)


def set_threads(n: int | None) -> None:
    """``numba.set_num_threads(n)`` for the kernels of this process; None keeps Numba's default (all threads).

    n must be in 1 .. NUMBA_NUM_THREADS (Numba's pool, fixed at start: the cores, or the environment
    variable); ValueError (one line) otherwise. The result does not depend on n (bitwise).
    """
    if n is None:
        return
    import numba

    top = numba.config.NUMBA_NUM_THREADS
    if not 1 <= n <= top:
        raise ValueError(f"--threads must be in 1..{top} (NUMBA_NUM_THREADS), got {n}")
    numba.set_num_threads(n)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m ch_numba",
        description="3D Cahn-Hilliard ground truth: simulate, generate data sets, merge shards, inspect, render.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=ArgumentParser)

    s = sub.add_parser(
        "simulate",
        help="one run from any initial condition to an HDF5 data set (1 sequence)",
        description="Simulate one evolution and write it in the data-set layout.",
    )
    s.add_argument("out", type=Path, help="output .h5 file (refused if it exists, unless --overwrite)")
    add_ic_arguments(
        s.add_argument_group("initial condition"),
        64,
        "grid edge L (L³ voxels; default %(default)s), or X,Y,Z for a box that is not a cube (e.g. 64,64,16 "
        "for a film); ignored for npy/h5 ICs",
        boxes=True,
    )
    _add_run(s)
    _add_physics(s)

    from .dataset.generation import DatasetConfig  # numpy, numba: imported when the parser is built

    g = sub.add_parser(
        "generate",
        help="a data set of many seeded Perlin-IC sequences (resumable, shardable)",
        description="Generate a training data set. Each finished sequence is saved in OUT.h5.parts/"
        " at once; rerun the same command after a crash to resume. With --shard i/n only "
        "every n-th sequence is made; run `merge` after all shards.",
    )
    g.add_argument("out", type=Path, help="output .h5 file (refused if it exists, unless --overwrite)")
    _add_run(g, only=None)  # --sequences, --frames, ... (DatasetConfig), --backend, --threads, --overwrite
    g.add_argument(
        "--frequencies",
        default=",".join(map(str, DatasetConfig.frequencies)),
        help="Perlin frequencies drawn per sequence (default %(default)s)",
    )
    g.add_argument("--shard", help="i/n: make only sequences i, i+n, i+2n, ... (then run merge)")
    g.add_argument("--keep-parts", action="store_true", help="keep OUT.h5.parts/ after merging")
    g.add_argument(
        "--batch",
        type=int,
        default=None,
        metavar="B",
        help="sequences advanced together in one solver batch (default: 1 on cpu, 16 on cuda); the data "
        "do not depend on it",
    )
    g.add_argument(
        "--writers",
        type=int,
        default=1,
        choices=(0, 1),
        help="1 (default): check, compress and write each frame in a writer thread while the solver computes "
        "the next; 0: in the solver's thread; the data do not depend on it",
    )
    _add_physics(g)

    m = sub.add_parser(
        "merge",
        help="assemble OUT.h5 from the shards in OUT.h5.parts/",
        description="Assemble OUT.h5 from OUT.h5.parts/ once every shard has finished.",
    )
    m.add_argument("out", type=Path, help="the data set to assemble (same name given to generate)")
    m.add_argument("--keep-parts", action="store_true", help="keep OUT.h5.parts/ after merging")
    _add_overwrite(m)

    i = sub.add_parser("info", help="summary of a data set", description="Print a summary of a data set.")
    i.add_argument("file", type=Path)

    r = sub.add_parser(
        "render",
        help="PNG slices and VTK .vti files of frames for ParaView",
        description="Write, for each chosen frame, a PNG of the three central slices and a .vti "
        "file; plus a strip of all chosen frames and the free energy F(t).",
    )
    r.add_argument("file", type=Path, help="data set (.h5)")
    r.add_argument("--out", type=Path, required=True, help="output folder (created)")
    r.add_argument("--sequence", type=int, default=0, help="sequence index (default %(default)s)")
    r.add_argument(
        "--frames",
        default="0,-1",
        help="comma-separated frame indices, negative from the end, or 'all' (default %(default)s)",
    )
    r.add_argument("--no-vti", action="store_true", help="PNG only")
    _add_overwrite(r, "pictures and .vti files of the same names")
    return parser


def _int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values:
        raise ValueError(f"{what} lists no value, got {text!r}")
    return values


def cmd_simulate(a, command: str) -> None:
    """``simulate``, holding the lock of its output and resume folder (:mod:`ch_numba.locks`): a second run on the
    same output is refused naming this one; every check below runs under the lock."""
    with output_lock(a.out, f"simulate into {a.out}", command):
        _simulate(a, command)


def _simulate(a, command: str) -> None:
    from . import initial
    from .dataset import prepare_resume_dir, resume_dir_of, run_params, write_sequence_file
    from .solver import BlowUpError, blowup_value, memory_needed

    params = _params(a)
    check_seed(a.seed)  # stored as int64: checked before the resume folder is made
    if a.frames < 1 or a.steps_per_frame < 1:
        raise ValueError(f"--frames and --steps-per-frame must be >= 1, got {a.frames} and {a.steps_per_frame}")
    check_output(a.out, a.overwrite)
    options = ic_options_from_args(a)
    shape = grid_shape(a.size)
    if a.ic == "h5" and a.ic_file is not None:  # a frame of a data set: its walls must be the run's
        from .dataset import open_dataset

        with open_dataset(a.ic_file) as ds:
            if ds.params.boundary != params.boundary:
                theirs, ours = ",".join(ds.params.boundary), ",".join(params.boundary)
                raise ValueError(
                    f"--ic-file {a.ic_file} was computed with boundary {theirs}, this run has {ours}; "
                    f"give --boundary {theirs} (or start from an .npy copy of the frame)"
                )
    if a.ic not in ("npy", "h5"):  # the grid is --size (a file IC brings its own, already in memory)
        if min(shape) < 3:
            raise ValueError(f"--size must be >= 3 along every axis, got {','.join(map(str, shape))}")
        check_memory(memory_needed(shape, a.dtype), f"a {grid_text(a.size)} run")
    phi0 = initial.make(a.ic, shape, seed=a.seed, boundary=params.boundary, **options)
    bad = blowup_value(phi0)
    if bad is not None:  # before anything is written (the resume folder below)
        raise BlowUpError(0, bad, str(a.ic_file or f"--ic {a.ic}"))
    ic = {"kind": a.ic, "seed": a.seed, **options}
    from tqdm import tqdm

    from .solver import resolve_backend

    backend = resolve_backend(a.backend, params.scheme)
    folder = resume_dir_of(a.out)
    recipe = {
        "params": run_params(params),
        "frames": a.frames,
        "steps_per_frame": a.steps_per_frame,
        "backend": backend,
        "dtype": a.dtype,
        "storage": a.storage,
        "shape": list(phi0.shape),
        "ic": ic,
    }
    remove_stale_temps(folder)  # checkpoints half-written by a killed run
    if prepare_resume_dir(folder, recipe):
        log.info("continuing the run checkpointed in %s", folder)
    set_resume_hint(
        lambda: (
            f"the finished frames are kept in {folder}: rerun the same command to resume"
            if (folder / "state.npz").exists()
            else ""
        )
    )
    log.info(
        "simulate: %s IC on %s grid, %d frames x %d steps, %s",
        a.ic,
        "x".join(map(str, phi0.shape)),
        a.frames,
        a.steps_per_frame,
        params.describe(),
    )
    with tqdm(total=a.frames, unit="frame", disable=None, desc=a.out.name) as bar:
        write_sequence_file(
            a.out,
            phi0,
            params,
            frames=a.frames,
            steps_per_frame=a.steps_per_frame,
            backend=backend,
            dtype=a.dtype,
            storage=a.storage,
            seed=a.seed,
            ic=ic,
            split="val",
            command=command,
            where=str(a.out),
            on_frame=lambda: bar.update(1),
            resume_dir=folder,
            overwrite=a.overwrite,
        )
    log.info("wrote %s", a.out)


def cmd_generate(a, command: str) -> None:
    from .dataset import DatasetConfig, generate

    cfg = from_args(DatasetConfig, a, frequencies=tuple(_int_list(a.frequencies, "--frequencies")))
    # SIGTERM (a Slurm time limit, scancel) and Ctrl-C: the unfinished parts are deleted and the shard's lock
    # released on the way out (cli_runner.run), the finished ones kept
    set_resume_hint("finished sequences are kept: rerun the same command to resume")
    result = generate(
        a.out,
        cfg,
        _params(a),
        backend=a.backend,
        shard=a.shard,
        command=command,
        keep_parts=a.keep_parts,
        batch=a.batch,
        overwrite=a.overwrite,
        writers=a.writers,
    )
    log.info("done: %s", result)


def energy_title(ds, sequence: int) -> str:
    """The title of render's F(t) plot: which grid the stored F was computed on — a surrogate rollout's
    network grid (``resolution="network"``, spacing downscale·dx) or full grid, else the solver's grid."""
    grid = "x".join(map(str, ds.shape))
    where = f"{ds.attrs['resolution']} grid" if "resolution" in ds.attrs else "grid"
    return f"Free energy, sequence {sequence}, on the {where} {grid} (dx {float(ds.attrs['dx']):g})"


def cmd_render(a) -> None:
    from .dataset import open_dataset

    with open_dataset(a.file) as ds:
        if not 0 <= a.sequence < ds.n_sequences:
            raise ValueError(f"--sequence {a.sequence} out of range (file has {ds.n_sequences})")
        n = ds.n_frames
        frames = list(range(n)) if a.frames == "all" else _int_list(a.frames, "--frames")
        for f in frames:
            if not -n <= f < n:
                raise ValueError(f"frame {f} out of range (sequence has {n} frames)")
        seen = {}
        for f in frames:
            if f % n in seen:
                raise ValueError(f"--frames lists frame {f % n} twice ({seen[f % n]} and {f})")
            seen[f % n] = f
        frames = [f % n for f in frames]
        stems = [a.out / f"seq{a.sequence:04d}_frame{f:04d}" for f in frames]
        outputs = [s.with_suffix(".png") for s in stems] + ([] if a.no_vti else [s.with_suffix(".vti") for s in stems])
        outputs += [a.out / f"seq{a.sequence:04d}_strip.png", a.out / f"seq{a.sequence:04d}_energy.png"]
        if a.out.exists() and not a.out.is_dir():
            raise ValueError(f"--out {a.out} exists and is not a folder")
        (a.out.parent if str(a.out.parent) else Path(".")).mkdir(parents=True, exist_ok=True)
        # one render at a time into --out (ch_numba.locks); the pictures are drawn in a temporary folder and
        # published together at the end: a frame that cannot be read leaves none of them
        with output_lock(a.out, f"render into {a.out}"), atomic_folder(a.out, a.overwrite) as staged:
            for path in outputs:
                check_output(path, a.overwrite)
            _render_into(ds, a, frames, staged)
    log.info("wrote %d frame pictures%s to %s", len(frames), "" if a.no_vti else " and .vti files", a.out)


def _render_into(ds, a, frames: list, folder: Path) -> None:
    """render's pictures of ``frames`` of the data set ``ds``, written into ``folder``."""
    from .render import plot_energy, plot_frames, plot_slices, write_vti

    times = ds.time[frames] + ds.t0[a.sequence]
    stack = []
    for f, t in zip(frames, times):
        phi = ds.phi[a.sequence, f]
        stack.append(phi)
        stem = folder / f"seq{a.sequence:04d}_frame{f:04d}"
        plot_slices(phi, stem.with_suffix(".png"), title=f"{a.file.name}  sequence {a.sequence}  frame {f}  t = {t:g}")
        if not a.no_vti:
            write_vti(stem.with_suffix(".vti"), {"phi": phi}, spacing=float(ds.attrs["dx"]))
    plot_frames(
        stack,
        times,
        folder / f"seq{a.sequence:04d}_strip.png",
        title=f"{a.file.name} sequence {a.sequence} (z = Z/2)",
    )
    plot_energy(
        ds.time + ds.t0[a.sequence],
        ds.free_energy[a.sequence],
        folder / f"seq{a.sequence:04d}_energy.png",
        title=energy_title(ds, a.sequence),
    )


def _glue_shard(argv: list[str]) -> list[str]:
    """``--shard -1/4`` as ``--shard=-1/4``: argparse takes a value starting with "-" for an option (and says
    "expected one argument"); glued, the value reaches :func:`parse_shard`, which names what is wrong."""
    out = []
    for i, arg in enumerate(argv):
        if i > 0 and argv[i - 1] == "--shard" and out and out[-1] == "--shard" and arg.startswith("-"):
            out[-1] = f"--shard={arg}"
        else:
            out.append(arg)
    return out


def _main(argv=None) -> int:
    import sys

    parser = build_parser()
    a = parser.parse_args(_glue_shard(list(sys.argv[1:] if argv is None else argv)))
    setup_logging(a.verbose)
    command = command_line("python -m ch_numba", argv)
    if a.command in ("simulate", "generate"):
        set_threads(a.threads)
    if a.command == "simulate":
        cmd_simulate(a, command)
    elif a.command == "generate":
        cmd_generate(a, command)
    elif a.command == "merge":
        from .dataset import merge

        merge(a.out, keep_parts=a.keep_parts, overwrite=a.overwrite, command=command)
    elif a.command == "info":
        from .dataset import open_dataset

        with open_dataset(a.file) as ds:
            print(ds.summary())
    elif a.command == "render":
        cmd_render(a)
    return 0


def main(argv=None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
