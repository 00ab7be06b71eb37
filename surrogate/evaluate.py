r"""Evaluation of a surrogate against ground truth (``python -m surrogate evaluate MODEL DATA.h5 --out DIR``).

The model is a PyTorch checkpoint (.pt, run by :class:`surrogate.runner.TorchRunner`) or an
exported step (.onnx, run by :class:`export.runtime.Rollout`). This module imports neither torch
nor onnxruntime itself: the runner's module is imported when the model is loaded, so an ONNX model
is evaluated without PyTorch installed.

For each selected sequence (stored frames φ_k, k = 0 .. T−1 on the X×Y×Z ground-truth grid,
stored free energy per volume F_k and mass m_k = ⟨φ_k⟩; f = the model's downscale factor)::

    ψ_0 = φ_0[::f, ::f, ::f]                           the network's input (nearest, every f-th voxel;
                                                       block means of f voxels along no-flux wall axes)
    ψ_k = model(ψ_{k−1}),  k = 1 .. T−1                free run, hidden states from zero;
                                                       one network step = one stored frame
    φ̂_k = upsample(ψ_k, f)                            each voxel repeated f³ times

No-flux walls: the box is the data set's (``CHParams.boundary`` of its attributes). The runner steps it
(:func:`surrogate.loading.load_runner`: mirror padding on wall axes; an ONNX graph exported before walls
is refused in one line), φ[::f, ::f, ::f] below stands for the downsampling with that boundary
(:func:`export.runtime.resample.downsample`), F is computed with the wall physics (no gradient across a
wall) on both grids, ∇ in δ and the interface velocity use the mirror ghosts, L is that of the
mirror-doubled periodic box (:func:`surrogate.metrics.mirror_doubled`) and the stationarity undoes no
translation along a wall axis (its layer shift there is null). evaluation.json records ``data.boundary``,
``model.boundary`` (the box stepped) and ``model.trained_boundary``.

For a model trained with ``train --stride s`` (its metadata's ``stride``; 1 otherwise) one network
step is s stored frames: "frame k" below is the stored frame k·s (the data set's frames 0, s, 2s, …
are the ground truth, its F, masses and times likewise), T counts those frames (``--frames``; default
all, (stored − 1) // s + 1), and the network's step j is compared with stored frame j·s.

and per frame k (all reductions in float64):

    rmse_network[k]  = sqrt(mean_v (ψ_k − φ_k[::f, ::f, ::f])²)            network grid
    rmse_full[k]     = sqrt(mean_v (φ̂_k − φ_k)²)                          ground-truth grid, the stricter
    delta[k]         = sqrt(Σ_v (φ̂_k − φ_k)² / Σ_v |∇φ_k|²)               interface displacement in units
                       of dx (derivation: :mod:`surrogate.metrics.errors`; ∇ by periodic central differences)
    free_energy_pred = F[φ̂_k] per volume, float64, with the data set's ε, W, dx (ch_numba.free_energy)
    free_energy_true = the stored F_k
    free_energy_rel_error = |F_pred − F_true| / F_true   (not 0 at frame 0: the f³ blocks of the
                       upsampled input change the gradient energy; that resolution floor is in every frame)
    free_energy_net_pred = F[ψ_k], free_energy_net_true = F[φ_k[::f, ::f, ::f]]   both on the network
                       grid (spacing f·dx): what the network sees, without the resolution floor
    free_energy_rel_error_network = |F_net_pred − F_net_true| / F_net_true   (0 at frame 0)
    length_pred[k], length_true[k] = L[ψ_k], L[φ_k[::f, ::f, ::f]]   characteristic length
                       L = 2π/⟨k⟩ on the network grid, in the units of dx
                       (:func:`surrogate.metrics.characteristic_length`): the domain size the F
                       curve cannot see
    mass_drift_pred[k] = |⟨ψ_k⟩ − ⟨ψ_0⟩| / ⟨ψ_0⟩   (0 to round-off for the conservative CRNN)
    mass_drift_true[k] = |m_k − m_0| / m_0           (the stored means)

Per sequence also: the stationary index (first k after which max_v |φ_{j+1} − φ_j| < tol for every
j ≥ k, :func:`surrogate.metrics.stationary_index`; prediction on its own grid, which has the same
maxima as φ̂) and the power law F = A t^α fitted by least squares in log-log space
(:func:`surrogate.metrics.fit_power_law`) over the window ``fit_range``, with t the time since the
initial condition, t = t0 + time (t0: the burn-in before frame 0; frame 0 at t = 0 is left out),
once for the full-grid F (``power_law_pred/true``, ``alpha_pred/true``) and once for the
network-grid F (``power_law_net_pred/true``, ``alpha_net_pred/true``: the fair comparison, free of
the upsampling floor that grows as the interfaces thin out). Coarsening predicts α ≈ −1/3.

Stationarity of the end of each sequence (:func:`surrogate.metrics.stationarity`, on the network
grid for both, ψ and φ[::f, ::f, ::f], lengths in network cells, one network step per frame), over
the tail of the last m = ⌊(T−1)/2⌋ network steps (at least 1), A = frame T−1−m, L = frame T−1::

    rms_change_tail            = sqrt(mean_v (L − A)²)                   0 for a stationary state
    rms_change_tail_translated = the same after the best periodic integer translation of A
    layered_fraction_final     = max_axes var(⟨L⟩ over the other two axes) / var(L)   1 = flat layers
    interface_velocity_tail    = mean over the m steps of δ(ψ_{k+1}, ψ_k) · 10⁴   network cells
                                 per 10⁴ network steps (rms normal speed of the interfaces)
    layer_shift_per_1e4_steps  = per axis, the summed sub-cell translation of the 1D profiles over
                                 the tail (:func:`surrogate.metrics.layer_shift`) · 10⁴ / m

per sequence as ``stationarity_pred`` / ``stationarity_true`` (the whole dict) and the scalars
``*_pred`` / ``*_true`` of the first four (averaged over the ensemble).

Ensemble over the S sequences: mean ± sd of every curve and number (:mod:`surrogate.report`, with the
summary table and the JSON writing).

Output: DIR/evaluation.json (all numbers, NaN written as null; per sequence and ensemble; model
metadata, data set physics, configuration, command line, code version) and the PNG plots of
:mod:`surrogate.plots`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import math
import time
import warnings as warnings_module
from pathlib import Path

import numpy as np

from ch_numba.files import atomic_folder
from ch_numba.locks import output_lock
from ch_numba.options import check_threads, option, parse_indices, parse_range
from export.runtime.grid import network_grid
from export.runtime.resample import downsample, upsample
from export.runtime.spec import PROVIDERS

from . import metrics
from .loading import load_runner, physics_warnings, trained_boundary
from .report import (  # noqa: F401  (the report's names, re-exported here for older imports)
    CURVES,
    FORMAT,
    FORMAT_VERSION,
    SCALARS,
    _stats,
    _write_json,
    ensemble,
    summary_table,
    write_evaluation,
)

log = logging.getLogger(__name__)

__all__ = [
    "EvalConfig",
    "evaluate",
    "load_runner",
    "select_sequences",
    "evaluate_sequence",
    "ensemble",
    "summary_table",
    "SELECTIONS",
    "SPLITS",
    "CURVES",
    "FORMAT",
    "FORMAT_VERSION",
]

#: what ``--split`` selects: a split of the data set ("val", "train": :data:`ch_numba.dataset.SPLITS`) or "all"
SELECTIONS = ("val", "train", "all")
SPLITS = SELECTIONS  # the old name (deprecated: the data set's SPLITS are its two splits)
#: per-sequence scalars taken from :func:`metrics.stationarity` (key there -> prefix here)
_STATIONARITY = {
    "rms_change": "rms_change_tail",
    "rms_change_up_to_translation": "rms_change_tail_translated",
    "layered_fraction": "layered_fraction_final",
    "interface_velocity": "interface_velocity_tail",
}


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """What to evaluate and how (saved in evaluation.json).

    model : .pt checkpoint, .onnx export or a shipped model's name.  data : ch3d data set (.h5).  out : output folder.
    split : "val" (default), "train" or "all": the sequences evaluated, unless ``sequences`` names them.
    sequences : explicit sequence indices (any split), or None.
    max_sequences : at most this many, a sample drawn with ``seed`` (kept in index order), or None: all.
    frames : frames per sequence including frame 0 (≥ 2; None: all stored).
    device : torch device for a .pt model ("auto", "cpu", "cuda", "cuda:N").
    providers : onnxruntime provider for an .onnx model ("auto", "cpu", "cuda").
    threads : CPU threads of the runner (None: its default).
    fit_range : (t_min, t_max) window of the power-law fit in time since the IC (None: open end).
    stationary_tol : tolerance of the stationary-state detection (max |Δφ| per frame).
    seed : seeds the ``max_sequences`` sample.  plots : write the PNG plots.
    overwrite : replace an earlier evaluation in ``out`` (its evaluation.json and every plot, so that none
        of it is left beside the new one); without it such a folder is refused.
    """

    model: str = option(
        positional=True,
        type=Path,
        help="checkpoint (.pt, needs PyTorch), exported model (.onnx, does not) or a shipped model's name (crnn64)",
    )
    data: str = option(positional=True, type=Path, help="ground truth: a ch3d data set (.h5)")
    out: str = option(
        type=Path,
        required=True,
        help="output folder: evaluation.json and PNG plots (refused if it holds them, unless --overwrite)",
    )
    split: str = option("val", "sequences to evaluate (default %(default)s)", choices=SELECTIONS)
    sequences: tuple | None = option(
        None,
        "evaluate these sequence indices (any split; overrides --split), e.g. 0,3,5 or 0-9",
        type=parse_indices,
        metavar="I,J,..",
    )
    max_sequences: int | None = option(
        None, "at most N sequences, a sample drawn with --seed (default: all selected)", metavar="N"
    )
    frames: int | None = option(
        None, "frames per sequence including frame 0, i.e. N-1 network steps (default: all stored)", metavar="N"
    )
    device: str = option("auto", "torch device for a .pt model: auto, cpu, cuda, cuda:N (default %(default)s)")
    providers: str = option("auto", "onnxruntime provider for an .onnx model (default %(default)s)", choices=PROVIDERS)
    threads: int | None = option(None, "CPU threads of the model (default: the runtime's choice)")
    fit_range: tuple = option(
        (None, None),
        "window of the power-law fit F = A t^alpha in time since the initial condition "
        "(default: all frames with t > 0)",
        type=parse_range,
        metavar="T0:T1",
    )
    stationary_tol: float = option(
        1e-4, "a state is stationary when max|phi_{k+1} - phi_k| stays below this (default %(default)s)"
    )
    seed: int = option(0, "seed of the --max-sequences sample (default %(default)s)")
    plots: bool = option(True, "numbers only (evaluation.json)", action="store_false")
    overwrite: bool = option(
        False,
        "replace evaluation.json and the plots in --out (all of them: none of an earlier run is left)",
        action="store_true",
    )

    def __post_init__(self):
        for name in ("model", "data", "out"):
            object.__setattr__(self, name, str(getattr(self, name)))
        if self.sequences is not None:
            object.__setattr__(self, "sequences", tuple(int(i) for i in self.sequences))
        object.__setattr__(self, "fit_range", tuple(self.fit_range))

        def need(cond, msg):
            if not cond:
                raise ValueError(msg)

        need(self.split in SELECTIONS, f"--split must be one of {', '.join(SELECTIONS)}, got {self.split!r}")
        need(
            self.sequences is None or (len(self.sequences) > 0 and min(self.sequences) >= 0),
            f"--sequences must be non-negative indices, got {self.sequences}",
        )
        need(
            self.max_sequences is None or self.max_sequences >= 1,
            f"--max-sequences must be >= 1, got {self.max_sequences}",
        )
        need(
            self.frames is None or self.frames >= 2,
            f"--frames must be >= 2 (frame 0 and a prediction), got {self.frames}",
        )
        check_threads(self.threads)
        need(len(self.fit_range) == 2, f"fit_range must be (t_min, t_max), got {self.fit_range}")
        lo, hi = self.fit_range
        need(lo is None or hi is None or lo < hi, f"--fit-range: t_min {lo} must be below t_max {hi}")
        need(
            math.isfinite(self.stationary_tol) and self.stationary_tol > 0,
            f"--stationary-tol must be a positive number, got {self.stationary_tol}",
        )
        need(self.seed >= 0, f"--seed must be >= 0, got {self.seed}")


# --------------------------------------------------------------------------- data


def select_sequences(ds, config: EvalConfig) -> np.ndarray:
    """Sorted sequence indices to evaluate (EvalConfig: sequences / split, then max_sequences)."""
    n = ds.n_sequences
    if config.sequences is not None:
        bad = [i for i in config.sequences if i >= n]
        if bad:
            raise ValueError(f"--sequences {bad[0]} is out of range: {ds.path} has {n} sequences (0..{n - 1})")
        chosen = np.array(sorted(set(config.sequences)), dtype=np.int64)
    elif config.split == "all":
        chosen = np.arange(n)
    else:
        chosen = ds.indices(config.split)
        if chosen.size == 0:
            others = " or ".join(s for s in SELECTIONS if s != config.split)  # not the split just used
            raise ValueError(f"{ds.path} has no '{config.split}' sequences; use --split {others}, or --sequences")
    if config.max_sequences is not None and chosen.size > config.max_sequences:
        rng = np.random.default_rng(config.seed)
        chosen = np.sort(rng.choice(chosen, size=config.max_sequences, replace=False))
    return chosen.astype(np.int64)


def _check_grid(ds, runner) -> tuple:
    """The network grid of the data set's grid (:func:`export.runtime.grid.network_grid`; one-line ValueError)."""
    return network_grid(ds.shape, runner.factor, runner.kernel, what="the data set's grid", prefix="grid mismatch: ")


def _check_finite(truth, data, index: int) -> None:
    """One-line ValueError naming file, sequence, frame and voxel where the stored frames ``truth``
    (T, X, Y, Z) hold a NaN or an Inf: every voxel is checked (the network's input is only every f-th),
    so no metric turns silently into null."""
    bad = ~np.isfinite(truth)
    if bad.any():
        k, *voxel = (int(n) for n in np.argwhere(bad)[0])
        value = "NaN" if np.isnan(truth[(k, *voxel)]) else "Inf"
        raise ValueError(
            f"{data}: sequence {index} frame {k} holds {value} at voxel ({', '.join(map(str, voxel))}); "
            "the ground truth must be finite"
        )


# --------------------------------------------------------------------------- one sequence


def _fit(t, F, fit_range):
    try:
        alpha, prefactor, r2 = metrics.fit_power_law(t, F, *fit_range)
    except ValueError:
        return None
    return {"alpha": alpha, "prefactor": prefactor, "r2": r2}


def evaluate_sequence(
    runner,
    truth: np.ndarray,
    params,
    *,
    free_energy_true,
    phi_mean_true,
    t_ic,
    fit_range=(None, None),
    stationary_tol: float = 1e-4,
) -> tuple[dict, np.ndarray]:
    """Roll the model out from ``truth[0]`` and compare (module docstring).

    Parameters
    ----------
    runner : Rollout-like (``factor``, ``rollout``)
    truth : array (T, X, Y, Z) float32, the stored frames, T ≥ 2
    params : ch_numba.CHParams of the data set (ε, W, dx for F and δ)
    free_energy_true, phi_mean_true : arrays (T,), the stored per-frame values
    t_ic : array (T,), time of each frame since the initial condition (power-law fit)

    Returns (record, pred_net): the per-frame curves (arrays (T,)) and numbers of :data:`CURVES` and
    :data:`SCALARS` plus ``power_law_pred``/``power_law_true`` (full-grid F) and
    ``power_law_net_pred``/``power_law_net_true`` (network-grid F), the stationary indices and the
    stationarity of the end, ``stationarity_pred``/``stationarity_true`` (dicts of
    :func:`metrics.stationarity` on the network grid, last ⌊(T−1)/2⌋ steps); and the
    predicted frames at the network's resolution, (T, X/f, Y/f, Z/f) float32 (frame 0 = the input).
    """
    truth = np.asarray(truth, dtype=np.float32)
    T = truth.shape[0]
    f = runner.factor
    boundary = tuple(params.boundary)
    if tuple(getattr(runner, "boundary", ("periodic",) * 3)) != boundary:
        raise ValueError(
            f"the runner steps a box with boundary {','.join(getattr(runner, 'boundary', ('periodic',) * 3))}, the "
            f"ground truth has {','.join(boundary)}: make the runner with boundary={','.join(boundary)!r}"
        )
    truth_net = downsample(truth, f, boundary)  # block means along wall axes (the walls stay put)
    pred_net = np.empty_like(truth_net)
    pred_net[0] = truth_net[0]
    for k, phi in enumerate(runner.rollout(truth_net[0], T - 1), start=1):
        pred_net[k] = phi
    pred = upsample(pred_net, f)
    F_true = np.asarray(free_energy_true, dtype=np.float64)
    m_true = np.asarray(phi_mean_true, dtype=np.float64)
    rec = {
        "rmse_network": metrics.rmse(pred_net, truth_net),
        "rmse_full": metrics.rmse(pred, truth),
        "delta": metrics.interface_displacement(pred, truth, dx=params.dx, boundary=boundary),
        "free_energy_pred": metrics.free_energy_series(pred, params),
        "free_energy_true": F_true,
        "phi_mean_pred": pred_net.reshape(T, -1).mean(axis=1, dtype=np.float64),
        "phi_mean_true": m_true,
    }
    del pred
    rec["free_energy_rel_error"] = metrics.relative_error(rec["free_energy_pred"], F_true)
    net_params = metrics.network_params(params, f)
    rec["free_energy_net_pred"] = metrics.free_energy_series(pred_net, net_params)
    rec["free_energy_net_true"] = metrics.free_energy_series(truth_net, net_params)
    rec["free_energy_rel_error_network"] = metrics.relative_error(
        rec["free_energy_net_pred"], rec["free_energy_net_true"]
    )
    rec["length_pred"] = metrics.characteristic_length(pred_net, dx=params.dx * f, boundary=boundary)
    rec["length_true"] = metrics.characteristic_length(truth_net, dx=params.dx * f, boundary=boundary)
    rec["mass_drift_pred"] = metrics.relative_drift(rec["phi_mean_pred"])
    rec["mass_drift_true"] = metrics.relative_drift(m_true)
    with np.errstate(all="ignore"):
        rec.update(
            rmse_network_final=rec["rmse_network"][-1],
            rmse_full_final=rec["rmse_full"][-1],
            rmse_full_mean=np.mean(rec["rmse_full"]),
            delta_final=rec["delta"][-1],
            delta_max=np.nanmax(rec["delta"]) if np.any(np.isfinite(rec["delta"])) else np.nan,
            free_energy_rel_error_final=rec["free_energy_rel_error"][-1],
            free_energy_rel_error_max=np.max(rec["free_energy_rel_error"]),
            free_energy_rel_error_network_final=rec["free_energy_rel_error_network"][-1],
            free_energy_rel_error_network_max=np.max(rec["free_energy_rel_error_network"]),
            mass_drift_pred_max=metrics.mass_drift(pred_net),
            mass_drift_true_max=np.max(rec["mass_drift_true"]),
            stationary_index_pred=metrics.stationary_index(pred_net, stationary_tol),
            stationary_index_true=metrics.stationary_index(truth, stationary_tol),
            power_law_pred=_fit(t_ic, rec["free_energy_pred"], fit_range),
            power_law_true=_fit(t_ic, F_true, fit_range),
            power_law_net_pred=_fit(t_ic, rec["free_energy_net_pred"], fit_range),
            power_law_net_true=_fit(t_ic, rec["free_energy_net_true"], fit_range),
        )
    for who, frames in (("pred", pred_net), ("true", truth_net)):
        st = metrics.stationarity(frames, 1, boundary=boundary)  # the last half of the sequence, network cells
        rec[f"stationarity_{who}"] = st
        for key, name in _STATIONARITY.items():
            rec[f"{name}_{who}"] = st[key]
    for name in ("", "_net"):
        for who in ("pred", "true"):
            fit = rec[f"power_law{name}_{who}"]
            rec[f"alpha{name}_{who}"] = fit["alpha"] if fit else np.nan
    return rec, pred_net


# --------------------------------------------------------------------------- the whole evaluation


def evaluate(config: EvalConfig, command: str = "") -> dict:
    """Run the evaluation of ``config`` and write DIR/evaluation.json (and the plots).

    Returns the evaluation as written (JSON-safe dict: per-frame lists, NaN as None). Keys:
    format, format_version, date, command, code_version, config, model (path, kind, backend,
    downscale, network_grid, metadata), data (path, grid, frames, physics, ...), warnings,
    sequences (one record per sequence: index, split, seed, t0, times, the :data:`CURVES`, the
    :data:`SCALARS`, power_law[_net]_pred/true, stationary indices), ensemble (:func:`ensemble`), timing,
    plots (file names).
    Raises ValueError (one line) for missing or foreign files, a grid the model cannot take, or
    bad options.
    """
    t_start = time.perf_counter()
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    (out.parent if str(out.parent) else Path(".")).mkdir(parents=True, exist_ok=True)
    # one evaluation at a time into --out (ch_numba.locks); its files are written in a temporary folder and
    # published together at the end (none of them, or all)
    with output_lock(out, f"an evaluation into {out}", command), _quiet_nan_statistics():
        return _evaluate(config, command, out, t_start)


#: numpy's RuntimeWarnings on statistics of NaN (a prediction that blew up): the evaluation says so itself, in one
#: warning naming the sequence, and writes those numbers as null
NAN_STATISTICS = r"Mean of empty slice|All-NaN slice encountered|Degrees of freedom <= 0|invalid value encountered"


@contextlib.contextmanager
def _quiet_nan_statistics():
    with warnings_module.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings_module.filterwarnings("ignore", message=NAN_STATISTICS, category=RuntimeWarning)
        yield


def _evaluate(config: EvalConfig, command: str, out: Path, t_start: float) -> dict:
    """:func:`evaluate` once it holds --out."""
    import ch_numba
    from ch_numba.provenance import code_version

    from . import plots

    outputs = [out / name for name in ("evaluation.json", *plots.PLOT_NAMES)]
    used = [p.name for p in outputs if p.exists()]
    if used and not config.overwrite:
        raise ValueError(
            f"--out {out} holds an earlier evaluation ({', '.join(used[:3])}"
            f"{' ...' if len(used) > 3 else ''}); choose another folder or pass --overwrite"
        )
    if not Path(config.data).exists():
        raise ValueError(f"{config.data}: no such file")
    with ch_numba.open_dataset(config.data) as ds:
        runner, kind = load_runner(  # on the data's boundary; an old ONNX graph is refused for walls, in one line
            config.model,
            device=config.device,
            providers=config.providers,
            threads=config.threads,
            boundary=ds.params.boundary,
        )
        net_grid = _check_grid(ds, runner)
        chosen = select_sequences(ds, config)
        stride = int(getattr(runner, "stride", 1))  # stored frames per network step (train --stride)
        usable = (ds.n_frames - 1) // stride + 1
        at = f" at the model's stride {stride} ({ds.n_frames} stored)" if stride > 1 else ""
        T = usable if config.frames is None else config.frames
        if T > usable:
            raise ValueError(f"--frames {T}: {config.data} stores only {usable} frames per sequence{at}")
        if T < 2:
            raise ValueError(f"{config.data} stores {usable} frame(s) per sequence{at}; evaluation needs >= 2")
        last = (T - 1) * stride + 1  # stored frames 0, stride, ..., (T - 1) stride
        warnings = physics_warnings(runner.metadata, ds, stride)
        for w in warnings:
            log.warning("warning: %s", w)
        params = ds.params
        times = np.asarray(ds.time[:last:stride], dtype=np.float64)
        log.info(
            "evaluating %s (%s, %s, downscale %d) on %d sequence(s) of %s x %d frames%s, grid %s -> network %s",
            config.model,
            kind,
            runner.backend,
            runner.factor,
            chosen.size,
            config.data,
            T,
            f" (every {stride}th stored frame: one network step = {stride} frames)" if stride > 1 else "",
            "x".join(map(str, ds.shape)),
            "x".join(map(str, net_grid)),
        )
        records, first, t_roll = [], None, 0.0
        for n, i in enumerate(chosen):
            truth = ds.phi[int(i), :last:stride]
            _check_finite(truth, config.data, int(i))  # a refusal leaves no --out folder behind (none made yet)
            t0 = float(ds.t0[i])
            t1 = time.perf_counter()
            rec, pred_net = evaluate_sequence(
                runner,
                truth,
                params,
                free_energy_true=ds.free_energy[i, :last:stride],
                phi_mean_true=ds.phi_mean[i, :last:stride],
                t_ic=t0 + times,
                fit_range=config.fit_range,
                stationary_tol=config.stationary_tol,
            )
            t_roll += time.perf_counter() - t1
            if not np.all(np.isfinite(pred_net)):
                msg = f"sequence {int(i)}: the prediction is not finite (the model blew up); its numbers are null"
                log.warning("warning: %s", msg)
                warnings.append(msg)
            rec = {
                "index": int(i),
                "split": str(ds.split[i]),
                "seed": int(ds.seed[i]),
                "t0": t0,
                "times_since_ic": t0 + times,
                **rec,
            }
            records.append(rec)
            if first is None:
                first = (truth, upsample(pred_net, runner.factor))
            log.info(
                "  sequence %*d (%d/%d, %s): rmse %.4g (network %.4g), delta %.3g, F rel. error max %.3g, "
                "mass drift %.2g, end: layered %.2f, interface velocity %.3g cells/1e4 steps",
                len(str(ds.n_sequences)),
                i,
                n + 1,
                chosen.size,
                rec["split"],
                rec["rmse_full_final"],
                rec["rmse_network_final"],
                rec["delta_final"],
                rec["free_energy_rel_error_max"],
                rec["mass_drift_pred_max"],
                rec["layered_fraction_final_pred"],
                rec["interface_velocity_tail_pred"],
            )
        data_info = {
            "path": str(Path(config.data).resolve()),
            "grid": list(ds.shape),
            "frames_stored": ds.n_frames,
            "frames": T,
            "stride": stride,
            "n_sequences": ds.n_sequences,
            "physics": params.as_dict(),
            "boundary": ",".join(params.boundary),
            "steps_per_frame": int(ds.attrs["steps_per_frame"]),
            "time_per_frame": float(ds.attrs["steps_per_frame"]) * params.dt,
            "package_version": ds.attrs.get("package_version"),
            "command": ds.attrs.get("command"),
        }
    result = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "code_version": code_version(),
        "config": dataclasses.asdict(config),
        "model": {
            "path": str(Path(config.model).resolve()),
            "kind": kind,
            "backend": runner.backend,
            "downscale": runner.factor,
            "network_grid": list(net_grid),
            "boundary": ",".join(runner.boundary),  # the box it stepped: the data's
            "trained_boundary": trained_boundary(runner.metadata),
            "metadata": runner.metadata,
        },
        "data": data_info,
        "warnings": warnings,
        "times": times,
        "sequences": records,
        "ensemble": ensemble(records),
    }
    steps = len(records) * (T - 1)
    result["timing"] = {
        "seconds": time.perf_counter() - t_start,
        "rollout_and_metrics_seconds": t_roll,
        "network_steps": steps,
    }
    result["plots"] = []
    with atomic_folder(out, config.overwrite) as staged:  # evaluation.json and the plots: all or none
        if config.plots:
            truth, pred = first
            result["plots"] = [p.name for p in plots.plot_all(result, staged, truth, pred)]
        clean = write_evaluation(staged / "evaluation.json", result)
        for path in outputs:  # --overwrite: nothing of the earlier evaluation stays beside this one
            path.unlink(missing_ok=True)
    log.info("%s", summary_table(clean))
    log.info("wrote %s%s", out / "evaluation.json", f" and {len(clean['plots'])} plots" if clean["plots"] else "")
    return clean
