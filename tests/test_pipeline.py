"""The generation pipeline (ch_numba.dataset.pipeline): the writer thread gives the files of the serial
writer bitwise, a failure in either thread stops the run keeping the finished sequences, and the CUDA
path (device reductions, one copy per frame; Numba's simulator here) agrees with the CPU path."""

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL_DATASET as SMALL
from conftest import assert_same_data
from conftest import read_dataset_arrays as read_all

import ch_numba
from ch_numba import initial
from ch_numba.cli import main
from ch_numba.dataset import DatasetConfig, generate, parts_dir
from ch_numba.dataset.writer import SequenceFile
from ch_numba.params import CHParams
from ch_numba.solver import free_energy


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The reference: every frame checked and written in the solver's thread (writers=0), one member."""
    path = tmp_path_factory.mktemp("pipe") / "serial.h5"
    generate(path, DatasetConfig(**SMALL), CHParams(), backend="cpu", progress=False, writers=0)
    return path


def writer_threads():
    return [t for t in threading.enumerate() if t.name == "ch3d-writer"]


@pytest.mark.parametrize("batch", [1, 2])
def test_writer_thread_gives_the_serial_files_bitwise(serial, tmp_path, batch):
    out = tmp_path / "threaded.h5"
    generate(out, DatasetConfig(**SMALL), CHParams(), backend="cpu", progress=False, batch=batch, writers=1)
    assert_same_data(read_all(out), read_all(serial))
    # and the stored mass and energy are those of the stored frames (independent recomputation)
    data = read_all(out)
    np.testing.assert_array_equal(data["phi_mean"], np.mean(data["phi"], axis=(2, 3, 4), dtype=np.float64))
    np.testing.assert_array_equal(data["free_energy"][1, 2], free_energy(data["phi"][1, 2], CHParams()))
    assert not writer_threads()


def _fail_on_add(monkeypatch, nth, exc):
    """SequenceFile.add raises exc on its nth call (counted over the run, in whichever thread writes)."""
    calls = []
    add = SequenceFile.add

    def failing(self, *a, **kw):
        calls.append(threading.current_thread().name)
        if len(calls) == nth:
            raise exc
        return add(self, *a, **kw)

    monkeypatch.setattr(SequenceFile, "add", failing)
    return calls


@pytest.mark.parametrize("writers", [0, 1])
def test_writer_error_stops_the_run_and_keeps_finished_sequences(tmp_path, serial, monkeypatch, writers):
    """A full disk while writing sequence 2's first frame: the same OSError stops the run, sequences 0 and 1
    stay committed, no temporary file is left, no writer thread; the rerun resumes to the reference data."""
    out = tmp_path / "full.h5"
    calls = _fail_on_add(monkeypatch, 7, OSError(28, "No space left on device"))  # 3 frames each of 0 and 1
    with pytest.raises(OSError, match="No space left on device"):
        generate(out, DatasetConfig(**SMALL), CHParams(), backend="cpu", progress=False, writers=writers)
    assert set(calls) == {"ch3d-writer" if writers else "MainThread"}
    parts = parts_dir(out)
    assert sorted(p.name for p in parts.glob("seq_*.h5")) == ["seq_000000.h5", "seq_000001.h5"]
    assert not [p for p in parts.iterdir() if "tmp" in p.name] and not out.exists()
    assert not writer_threads()
    monkeypatch.undo()
    generate(out, DatasetConfig(**SMALL), CHParams(), backend="cpu", progress=False, writers=writers)
    assert_same_data(read_all(out), read_all(serial))


@pytest.mark.parametrize("writers", ["0", "1"])
def test_writer_error_is_one_error_line_of_the_command(tmp_path, monkeypatch, capsys, writers):
    out = tmp_path / "cli.h5"
    calls = _fail_on_add(monkeypatch, 4, OSError(28, "No space left on device"))
    argv = ["generate", str(out), "--sequences", "2", "--frames", "3", "--steps-per-frame", "10", "--size", "8"]
    code = main([*argv, "--backend", "cpu", "--seed", "3", "--writers", writers])
    assert set(calls) == {"ch3d-writer" if writers == "1" else "MainThread"}
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert [line for line in err if line.startswith("error:")] == [err[-1]]
    assert err[-1] == (
        "error: no space left on device: [Errno 28] No space left on device; "
        "finished sequences are kept: rerun the same command to resume"
    )
    assert "Traceback" not in "\n".join(err)
    assert [p.name for p in parts_dir(out).glob("seq_*.h5")] == ["seq_000000.h5"]


def test_solver_side_error_stops_the_writer(tmp_path, monkeypatch):
    """An error in the solver's thread (here: making the third initial condition) while the writer holds
    sequence 1's file open: the writer stops, its temporary file is deleted, sequence 0 is kept."""
    perlin, calls = initial.perlin, []

    def failing(*a, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise MemoryError("no memory for the initial condition")
        return perlin(*a, **kw)

    monkeypatch.setattr(initial, "perlin", failing)
    out = tmp_path / "ic.h5"
    with pytest.raises(MemoryError):
        generate(out, DatasetConfig(**SMALL), CHParams(), backend="cpu", progress=False, batch=2)
    parts = parts_dir(out)
    assert [p.name for p in parts.glob("seq_*.h5")] == ["seq_000000.h5"]  # burn-in 1: finished first
    assert not [p for p in parts.iterdir() if "tmp" in p.name]
    assert not writer_threads()


def test_blowup_found_by_the_writer_names_the_sequence(tmp_path):
    p = CHParams()
    object.__setattr__(p, "dt", 1.2 * p.stable_dt())  # unstable on purpose
    out = tmp_path / "blow.h5"
    with pytest.raises(ch_numba.BlowUpError, match=r"^sequence \d: simulation blew up at step \d+") as e:
        generate(out, DatasetConfig(**{**SMALL, "amplitude": 0.5}), p, backend="cpu", progress=False, batch=3)
    assert e.value.member in (0, 1, 2) and e.value.step > 0
    assert not list(parts_dir(out).glob("seq_*")) and not list(tmp_path.glob("*.tmp*"))


# ----------------------------------------------------------------------------- CUDA (simulator)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_device_reductions_match_the_cpu(dtype):
    cuda_stats = pytest.importorskip("ch_numba.kernels_cuda_stats", reason="numba-cuda not installed")
    from numba import cuda

    from ch_numba.solver import blowup_value

    rng = np.random.default_rng(4)
    phi = (0.5 + 0.2 * rng.uniform(-1, 1, (3, 5, 4, 6))).astype(dtype)
    phi[1, 2, 3, 1] = 1.75  # out of range
    phi[2, 0, 1, 2] = np.nan
    phi[2, 4, 0, 5] = -0.75
    p = CHParams()
    out = cuda.device_array((3, 5, 5), np.float64)
    cuda_stats.launch_stats(cuda.to_device(phi), p, out)
    s = cuda_stats.finish(out.copy_to_host(), phi[0].size)
    for m in range(2):
        np.testing.assert_allclose(s["mass"][m], np.mean(phi[m], dtype=np.float64), rtol=1e-12)
        np.testing.assert_allclose(s["energy"][m], free_energy(phi[m], p), rtol=1e-12)
    np.testing.assert_array_equal(s["min"][:2], [np.min(phi[0]), np.min(phi[1])])
    np.testing.assert_array_equal(s["max"][:2], [np.max(phi[0]), np.max(phi[1])])
    assert s["max"][1] == np.float64(dtype(1.75)) == blowup_value(phi[1])
    assert list(s["nonfinite"]) == [0, 0, 1] and s["min"][2] == np.float64(dtype(-0.75))


@pytest.mark.cuda
@pytest.mark.parametrize(
    "boundary", ["neumann", ("periodic", "neumann", "periodic"), ("neumann", "periodic", "neumann")]
)
def test_device_free_energy_has_no_gradient_across_walls(boundary):
    """With no-flux walls the device's free energy is the CPU's (no gradient term across a wall), which
    differs from the periodic one by the wrap-around differences."""
    cuda_stats = pytest.importorskip("ch_numba.kernels_cuda_stats", reason="numba-cuda not installed")
    from numba import cuda

    rng = np.random.default_rng(5)
    phi = rng.uniform(0, 1, (2, 5, 4, 6))
    p = CHParams(boundary=boundary)
    out = cuda.device_array((2, 5, 5), np.float64)
    cuda_stats.launch_stats(cuda.to_device(phi), p, out)
    s = cuda_stats.finish(out.copy_to_host(), phi[0].size)
    for m in range(2):
        np.testing.assert_allclose(s["energy"][m], free_energy(phi[m], p), rtol=1e-12)
        assert abs(s["energy"][m] - free_energy(phi[m], CHParams())) > 1e-3


@pytest.mark.cuda
def test_cuda_generate_matches_cpu(tmp_path):
    """generate on cuda (device reductions, one asynchronous copy of the batch per frame into pinned
    buffers, the writer thread) against the cpu backend, float64: fields, mass and energy to round-off."""
    pytest.importorskip("ch_numba.kernels_cuda", reason="numba-cuda not installed")
    from ch_numba.kernels_cuda import gpu_available, is_simulator

    if not (is_simulator() or gpu_available()):
        pytest.skip("no CUDA device and simulator disabled")
    cfg = DatasetConfig(
        sequences=3, frames=2, steps_per_frame=2, size=6, burn_in_frames=1, val_fraction=0.0, seed=2, dtype="float64"
    )
    generate(tmp_path / "cpu.h5", cfg, CHParams(), backend="cpu", progress=False, batch=2)
    generate(tmp_path / "cuda.h5", cfg, CHParams(), backend="cuda", progress=False, batch=2)
    a, b = read_all(tmp_path / "cpu.h5"), read_all(tmp_path / "cuda.h5")
    for name in ("seed", "ic", "burn_in", "split", "time", "t0"):
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    np.testing.assert_allclose(b["phi"], a["phi"], rtol=0, atol=1e-6)  # stored float32 (lzf)
    np.testing.assert_allclose(b["phi_mean"], a["phi_mean"], rtol=1e-12)
    np.testing.assert_allclose(b["free_energy"], a["free_energy"], rtol=1e-10)


def test_device_reductions_compile_for_sm80_and_sm90(tmp_path):
    """The reduction kernel compiles (NVVM from the pip wheels, in a process without the simulator) for sm_80
    and sm_90, float32 and float64; where ptxas is installed its assembly spills nothing."""
    pytest.importorskip("ch_numba.kernels_cuda_stats", reason="numba-cuda not installed")
    code = (
        "import numpy as np, sys\n"
        "from ch_numba.kernels_cuda_stats import compile_ptx\n"
        "for dt in (np.float32, np.float64):\n"
        "    for cc in ((8, 0), (9, 0)):\n"
        "        ptx = compile_ptx(dt, cc)\n"
        "        open(sys.argv[1] + f'/stats_{np.dtype(dt).name}_sm{cc[0]}{cc[1]}.ptx', 'w').write(ptx)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True)
    if res.returncode and ("NVVM" in res.stderr or "libnvvm" in res.stderr):
        pytest.skip(f"no NVVM here: {res.stderr.strip().splitlines()[-1]}")
    assert res.returncode == 0, res.stderr
    ptxs = sorted(tmp_path.glob("stats_*.ptx"))
    assert len(ptxs) == 4 and all(".entry" in p.read_text() for p in ptxs)
    wheel = sorted(Path(sys.prefix).glob("lib/python*/site-packages/nvidia/*/bin/ptxas"))  # NVVM's own version
    ptxas = str(wheel[-1]) if wheel else shutil.which("ptxas")
    if ptxas is None:
        return
    for p in ptxs:
        arch = "sm_" + p.stem.rsplit("sm", 1)[1]
        out = subprocess.run(
            [str(ptxas), "-v", f"-arch={arch}", str(p), "-o", os.devnull], capture_output=True, text=True
        )
        if "Unsupported .version" in out.stderr:
            return  # a ptxas older than NVVM
        assert out.returncode == 0, out.stderr
        assert " 0 bytes spill stores" in out.stderr and " 0 bytes spill loads" in out.stderr, out.stderr
