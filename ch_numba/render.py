"""Pictures of fields: PNG central slices (matplotlib) and VTK ImageData (.vti) for ParaView.

The .vti writer is self-contained (XML header + raw appended little-endian data,
no VTK dependency). Arrays are (X, Y, Z); VTK stores x fastest, so the data are
written in Fortran order and ParaView shows the same orientation as numpy's indices.

Plots are drawn on a :class:`matplotlib.figure.Figure` with the Agg canvas (:func:`new_figure`),
never through pyplot or ``matplotlib.use``: the caller's backend (a notebook's, say) is left alone.

Axes of time series (:func:`log_time_axis`, :func:`log_value_axis`, also used by the evaluation's
plots): time is in the equation's own units (:data:`TIME_UNIT`; with dx = M = W = 1 one unit is
dx²/(M W), see docs/physics.md on physical units). A log time axis that would lose frame 0 (t = 0) is
symmetric-log instead, linear from 0 to the first positive time t₁ and logarithmic above it, so
t = 0 is drawn and labelled 0; log value axes get plain decimal tick labels, enough of them on a
narrow range.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .files import atomic_write


def write_vti(path, fields: dict, spacing: float = 1.0) -> Path:
    """Write point data `fields` (name → (X, Y, Z) array, all the same shape) as a .vti file."""
    path = Path(path)
    arrays = {name: np.asarray(a) for name, a in fields.items()}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise ValueError(f"write_vti needs (X, Y, Z) arrays of one shape, got {sorted(shapes)}")
    nx, ny, nz = next(iter(shapes))
    extent = f"0 {nx - 1} 0 {ny - 1} 0 {nz - 1}"
    header, blobs, offset = [], [], 0
    for name, a in arrays.items():
        a = a.astype(np.float64 if a.dtype == np.float64 else np.float32)
        vtk_type = "Float64" if a.dtype == np.float64 else "Float32"
        raw = np.asfortranarray(a).astype(a.dtype.newbyteorder("<")).tobytes(order="F")
        header.append(f'        <DataArray type="{vtk_type}" Name="{name}" format="appended" offset="{offset}"/>')
        blob = np.uint64(len(raw)).tobytes() + raw
        blobs.append(blob)
        offset += len(blob)
    first = next(iter(arrays))
    xml = (
        '<?xml version="1.0"?>\n'
        '<VTKFile type="ImageData" version="1.0" byte_order="LittleEndian" header_type="UInt64">\n'
        f'  <ImageData WholeExtent="{extent}" Origin="0 0 0" Spacing="{spacing} {spacing} {spacing}">\n'
        f'    <Piece Extent="{extent}">\n'
        f'      <PointData Scalars="{first}">\n' + "\n".join(header) + "\n"
        "      </PointData>\n    </Piece>\n  </ImageData>\n"
        '  <AppendedData encoding="raw">\n   _'
    )

    def write(fh):
        fh.write(xml.encode())
        for blob in blobs:
            fh.write(blob)
        fh.write(b"\n  </AppendedData>\n</VTKFile>\n")

    return atomic_write(path, write)


def read_vti(path) -> dict:
    """Read back a .vti written by :func:`write_vti` (for tests): name → (X, Y, Z) array."""
    import re

    data = Path(path).read_bytes()
    head, _, tail = data.partition(b'<AppendedData encoding="raw">')
    start = tail.index(b"_") + 1
    ext = [int(v) for v in re.search(rb'WholeExtent="([^"]+)"', head).group(1).split()]
    shape = (ext[1] + 1, ext[3] + 1, ext[5] + 1)
    out = {}
    for m in re.finditer(rb'type="(Float32|Float64)" Name="([^"]+)" format="appended" offset="(\d+)"', head):
        dtype = np.dtype("<f4" if m.group(1) == b"Float32" else "<f8")
        pos = start + int(m.group(3))
        nbytes = int(np.frombuffer(tail[pos : pos + 8], "<u8")[0])
        flat = np.frombuffer(tail[pos + 8 : pos + 8 + nbytes], dtype)
        out[m.group(2).decode()] = flat.reshape(shape, order="F")
    return out


def save_png(fig, path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG file, atomically (:func:`ch_numba.files.atomic_write`: a killed run leaves no
    half-written picture). Returns ``path`` as a Path."""
    return atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=dpi))


def new_figure(**kwargs):
    """A :class:`matplotlib.figure.Figure` (``kwargs`` as there) drawn by the Agg canvas, for PNG files.

    Not pyplot's: no global figure registry to close, and no backend chosen or switched for the process
    (``matplotlib.use`` inside a library call would change a notebook user's backend).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


#: the unit of t on plot axes: the time variable of ∂φ/∂t = M∇²μ as the solver integrates it
TIME_UNIT = "simulation time units"


def _plain(value, _pos=None) -> str:
    return f"{value:g}"


def _log_ticks(lo: float, hi: float, nbins: int = 5, span: float | None = None) -> list[float]:
    """Major ticks for a log axis over [lo, hi] (0 < lo < hi) showing data that span ``span`` decades
    (default: log10(hi / lo)): every decade over more than 3 decades, 1-2-5 per decade over 1-3, up to
    ``nbins`` + 1 evenly spaced round numbers under one decade."""
    from matplotlib.ticker import MaxNLocator

    span = np.log10(hi / lo) if span is None else span
    if span < 1:
        ticks = [float(v) for v in MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi) if v > 0]
    else:
        subs = (1.0, 2.0, 5.0) if span <= 3 else (1.0,)
        decades = range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
        ticks = [float(f"{s * 10.0**d:.12g}") for d in decades for s in subs]
    return [v for v in ticks if lo <= v <= hi]


def _set_ticks(axis, ticks) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(_plain))
    axis.set_minor_formatter(NullFormatter())


def _padded(lo: float, hi: float, share: float = 0.05) -> tuple[float, float]:
    """[lo, hi] (0 < lo ≤ hi) widened by ``share`` of its log span on each side (×1.1 if lo == hi)."""
    if hi <= lo:
        return lo / 1.1, hi * 1.1
    pad = (hi / lo) ** share
    return lo / pad, hi * pad


def log_time_axis(ax, times) -> tuple[float, float] | None:
    """Put the x axis of ``ax`` on a log scale that keeps t = 0 (module docstring); returns the limits.

    ``times`` (any shape): the times drawn. All positive: log. Some zero: symlog, linear on [0, t₁]
    (t₁ = the smallest positive time, drawn as wide as half a decade), the left limit just below 0 so
    a point at t = 0 is inside. The limits fit the times (nothing drawn later stretches them). Tick
    labels are plain numbers (0, 1, 2, 5, 10, ...). None positive: the axis is left linear (None).
    """
    t = np.asarray(times, dtype=float).ravel()
    t = t[np.isfinite(t)]
    positive = t[t > 0]
    if positive.size == 0:
        return None
    t1, t_max = float(positive.min()), float(positive.max())
    lo, hi = _padded(t1, t_max)
    if np.any(t <= 0):
        ax.set_xscale("symlog", linthresh=t1, linscale=0.5)
        lim = (-0.1 * t1, hi)
        ticks = [0.0] + _log_ticks(t1, hi, nbins=3, span=np.log10(t_max / t1)) if t_max > t1 else [0.0, t1]
    else:
        ax.set_xscale("log")
        lim = (lo, hi)
        ticks = _log_ticks(lo, hi, span=np.log10(t_max / t1))
    ax.set_xlim(*lim)
    _set_ticks(ax.xaxis, ticks)
    return lim


def log_value_axis(ax, values) -> tuple[float, float] | None:
    """Log y axis of ``ax`` fitted to the positive finite ``values`` with readable ticks; returns the limits.

    The limits are the values' range widened by 5 % of its log span on each side, so nothing drawn
    later (a guide line) stretches them; ticks as :func:`log_time_axis`'s, plain numbers. None (axis
    left linear) when no value is positive.
    """
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return None
    lo, hi = float(v.min()), float(v.max())
    lim = _padded(lo, hi)
    ax.set_yscale("log")
    ax.set_ylim(*lim)
    _set_ticks(ax.yaxis, _log_ticks(*lim, span=np.log10(hi / lo)))
    return lim


def plot_slices(phi, path, title: str = "", vmin: float = 0.0, vmax: float = 1.0) -> Path:
    """PNG of the three central slices (x = X/2, y = Y/2, z = Z/2) of an (X, Y, Z) field."""
    return save_png(slices_figure(phi, title, vmin, vmax), path)


def _grid_axes(ax, horizontal: str, vertical: str) -> None:
    """Name an image's axes in grid cells (voxel indices) and keep a few integer ticks."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel(f"{horizontal} (grid cells)", fontsize=8)
    ax.set_ylabel(f"{vertical} (grid cells)", fontsize=8)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    ax.tick_params(labelsize=7)


def slices_figure(phi, title: str = "", vmin: float = 0.0, vmax: float = 1.0):
    """The figure of :func:`plot_slices` (axes in grid cells, with ticks)."""
    phi = np.asarray(phi)
    nx, ny, nz = phi.shape
    fig = new_figure(figsize=(10, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, (img, lab) in zip(
        axes,
        [(phi[nx // 2], "x = X/2 (y, z)"), (phi[:, ny // 2], "y = Y/2 (x, z)"), (phi[:, :, nz // 2], "z = Z/2 (x, y)")],
    ):
        im = ax.imshow(img.T, origin="lower", cmap="RdBu_r", vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(lab, fontsize=9)
        _grid_axes(ax, *lab[lab.index("(") + 1 : -1].split(", "))
    fig.colorbar(im, ax=axes, shrink=0.8, label="φ")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_frames(frames, times, path, title: str = "") -> Path:
    """PNG strip of the central z-slice of several frames: frames (K, X, Y, Z), times (K,)."""
    k = len(frames)
    fig = new_figure(figsize=(2.2 * k + 0.8, 2.6), layout="constrained")
    axes = fig.subplots(1, k, squeeze=False)
    for ax, phi, t in zip(axes[0], frames, times):
        im = ax.imshow(
            np.asarray(phi)[:, :, phi.shape[2] // 2].T,
            origin="lower",
            cmap="RdBu_r",
            vmin=0,
            vmax=1,
            interpolation="nearest",
        )
        ax.set_title(f"t = {t:g}", fontsize=9)
        _grid_axes(ax, "x", "y")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="φ")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_png(fig, path)


def energy_figure(times, energies, labels=None, title: str = "Free energy"):
    """Figure of F(t) per volume on log axes: times (F,) since the initial condition, energies (K, F) or (F,).

    Every frame is drawn, frame 0 (t = 0) included (:func:`log_time_axis`), each as a dot on its curve.
    """
    energies = np.atleast_2d(np.asarray(energies, dtype=float))
    t = np.asarray(times, dtype=float)
    fig = new_figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.subplots()
    for j, e in enumerate(energies):
        ax.plot(t, e, marker="o", markersize=2.5, label=None if labels is None else labels[j])
    log_time_axis(ax, t)
    log_value_axis(ax, energies)
    ax.set_xlabel(f"t since the initial condition ({TIME_UNIT})")
    ax.set_ylabel("F / V (free energy per volume)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    if labels is not None:
        ax.legend(fontsize=8)
    return fig


def plot_energy(times, energies, path, labels=None, title: str = "Free energy") -> Path:
    """PNG of :func:`energy_figure` (F(t) per volume on log axes, t = 0 kept): times (F,), energies (K, F) or (F,)."""
    return save_png(energy_figure(times, energies, labels, title), path)
