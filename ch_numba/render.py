"""Pictures of fields: PNG central slices (matplotlib) and VTK ImageData (.vti) for ParaView.

The .vti writer is self-contained (XML header + raw appended little-endian data,
no VTK dependency). Arrays are (X, Y, Z); VTK stores x fastest, so the data are
written in Fortran order and ParaView shows the same orientation as numpy's indices.

Plots are drawn on a :class:`matplotlib.figure.Figure` with the Agg canvas (:func:`new_figure`),
never through pyplot or ``matplotlib.use``: the caller's backend (a notebook's, say) is left alone.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


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
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(xml.encode())
        for blob in blobs:
            fh.write(blob)
        fh.write(b"\n  </AppendedData>\n</VTKFile>\n")
    os.replace(tmp, path)
    return path


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
        nbytes = int(np.frombuffer(tail[pos:pos + 8], "<u8")[0])
        flat = np.frombuffer(tail[pos + 8:pos + 8 + nbytes], dtype)
        out[m.group(2).decode()] = flat.reshape(shape, order="F")
    return out


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


def plot_slices(phi, path, title: str = "", vmin: float = 0.0, vmax: float = 1.0) -> Path:
    """PNG of the three central slices (x = X/2, y = Y/2, z = Z/2) of an (X, Y, Z) field."""
    phi = np.asarray(phi)
    nx, ny, nz = phi.shape
    fig = new_figure(figsize=(10, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, (img, lab) in zip(axes, [(phi[nx // 2], "x = X/2 (y, z)"), (phi[:, ny // 2], "y = Y/2 (x, z)"),
                                     (phi[:, :, nz // 2], "z = Z/2 (x, y)")]):
        im = ax.imshow(img.T, origin="lower", cmap="RdBu_r", vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(lab, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes, shrink=0.8, label="φ")
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def plot_frames(frames, times, path, title: str = "") -> Path:
    """PNG strip of the central z-slice of several frames: frames (K, X, Y, Z), times (K,)."""
    k = len(frames)
    fig = new_figure(figsize=(2.2 * k + 0.8, 2.6), layout="constrained")
    axes = fig.subplots(1, k, squeeze=False)
    for ax, phi, t in zip(axes[0], frames, times):
        im = ax.imshow(np.asarray(phi)[:, :, phi.shape[2] // 2].T, origin="lower", cmap="RdBu_r", vmin=0, vmax=1,
                       interpolation="nearest")
        ax.set_title(f"t = {t:g}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="φ")
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def plot_energy(times, energies, path, labels=None, title: str = "Free energy") -> Path:
    """PNG of F(t) per volume on log-log axes: times (F,), energies (K, F) or (F,)."""
    energies = np.atleast_2d(energies)
    fig = new_figure(figsize=(5, 3.6), layout="constrained")
    ax = fig.subplots()
    t = np.asarray(times, dtype=float)
    for j, e in enumerate(energies):
        ax.plot(t[t > 0], e[t > 0], label=None if labels is None else labels[j])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel("F / V")
    ax.set_title(title, fontsize=10)
    if labels is not None:
        ax.legend(fontsize=8)
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path
