"""Faults and concurrency (issue 25): a second run on the same output, signals, a killed run's leftovers, a full
disk, a damaged file, a read-only folder. Real processes and real signals where the case is about them; a
full disk on a small tmpfs where this machine lets us mount one (root), and through a file-size limit
(RLIMIT_FSIZE: EFBIG, the same code path) everywhere else, so CI runs it too.

Every refusal is checked the same way: one ``error:`` line, the documented exit status
(:data:`ch_numba.cli_runner.EXIT`), no traceback, no "Exception ignored", nothing half-written left.
"""

from __future__ import annotations

import errno
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from ch_numba import cli_runner, files, locks, open_dataset
from ch_numba.cli import main

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "NUMBA_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
HOST = socket.gethostname()


def _cmd(*args) -> list[str]:
    return [sys.executable, "-m", *map(str, args)]


def _one_error_line(stderr: str) -> str:
    """The one line of a refusal: no traceback, no "Exception ignored", nothing else on stderr but log lines."""
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def _leftovers(folder: Path) -> list[str]:
    """Temporary files and locks anywhere below ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".tmp" in p.name or p.suffix == ".lock")


def _wait_for(predicate, proc, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not predicate():
        time.sleep(0.05)
    assert predicate(), f"the run ended (status {proc.poll()}) before it got there: {proc.stderr.read()}"


def _default_sigint() -> None:
    """In the child before exec: SIGINT at its default, so that Python installs its KeyboardInterrupt handler
    (a test run started in the background, ``make test &``, passes SIGINT on ignored, and Python keeps it so)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _simulate_cmd(out, *extra):
    """A slow simulate (a small grid on the NumPy backend: no compilation) that writes a frame every ~0.1 s."""
    return _cmd(
        "ch_numba", "simulate", out, "--size", "4", "--frames", "400", "--steps-per-frame", "400",
        "--backend", "numpy", "--seed", "3", *extra,
    )  # fmt: skip


def _race(cmd, started):
    """Start ``cmd``, wait until ``started()``, run the same command a second time, then SIGTERM the first.

    Returns (the first's pid, the second's CompletedProcess, whether the first was still running when the
    second ended, the first's exit status, its stderr)."""
    first = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(started, first)
        second = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)
        running = first.poll() is None
        first.send_signal(signal.SIGTERM)
        err = first.communicate(timeout=60)[1]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    return first.pid, second, running, first.returncode, err


# --------------------------------------------------------------------------- one lock, no-clobber publication


def test_a_second_simulate_on_the_same_output_is_refused_naming_the_first_and_sigterm_ends_it(tmp_path):
    """Two identical simulate runs at once (two real processes): the second stops with one line naming the first's
    lock (pid, host) and exit 2, touching nothing; SIGTERM ends the first with one line and 143, its temporary file
    and lock deleted, its finished frames kept for the rerun."""
    out = tmp_path / "o.h5"
    pid, second, running, status, err = _race(
        _simulate_cmd(out), lambda: (tmp_path / "o.h5.resume" / "frame_000001.npy").exists()
    )
    assert running, "the first run should still be running"
    line = _one_error_line(second.stderr)
    assert second.returncode == cli_runner.EXIT["bad input or refused"] == 2
    assert re.fullmatch(
        rf"error: simulate into {re.escape(str(out))} is already running \(pid {pid} on host "
        rf"{re.escape(HOST)}, started .*\); if that job is gone, delete {re.escape(str(out))}\.lock",
        line,
    ), line
    assert status == cli_runner.EXIT["terminated (SIGTERM)"] == 143, err
    assert _one_error_line(err) == (
        f"error: terminated (SIGTERM); the finished frames are kept in {out}.resume: rerun the same command to resume"
    )
    assert not out.exists() and _leftovers(tmp_path) == []
    assert (tmp_path / "o.h5.resume" / "state.npz").exists()


def test_sigint_is_130_with_one_line_and_sigkill_leftovers_are_removed_at_the_next_start(tmp_path, caplog):
    """SIGINT: one line, 130. SIGKILL cannot be caught: it leaves the lock and the temporary file
    (``o.h5.tmpPID.HOST``); the next run takes the stale lock over, deletes the temporary file and resumes."""
    out = tmp_path / "o.h5"
    args = ["--size", "4", "--frames", "3", "--steps-per-frame", "300", "--backend", "numpy", "--seed", "3"]
    for sig, status in ((signal.SIGINT, 130), (signal.SIGKILL, -signal.SIGKILL)):
        proc = subprocess.Popen(  # SIGINT as an interactive shell gives it (a background `make test` ignores it)
            _simulate_cmd(out),
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_default_sigint,
        )
        try:
            _wait_for(
                lambda: (
                    any(tmp_path.glob("o.h5.tmp*"))
                    and (tmp_path / "o.h5.lock").exists()
                    and (tmp_path / "o.h5.resume" / "state.npz").exists()
                ),
                proc,
            )
            proc.send_signal(sig)
            err = proc.communicate(timeout=60)[1]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == status
        if sig == signal.SIGINT:
            assert _one_error_line(err).startswith("error: interrupted (SIGINT); the finished frames are kept in")
            assert _leftovers(tmp_path) == []
    left = _leftovers(tmp_path)
    assert "o.h5.lock" in left and any(re.fullmatch(rf"o\.h5\.tmp{proc.pid}\.{re.escape(HOST)}", n) for n in left)
    shutil.rmtree(tmp_path / "o.h5.resume")  # the rerun below is a shorter run (another recipe)
    assert main(["simulate", str(out), *args]) == 0
    assert "took over the stale lock" in caplog.text and f"pid {proc.pid}" in caplog.text
    assert _leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["o.h5"]


@pytest.fixture
def holder():
    """A live process of this host, and the lock file it would hold on an output."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])

    def hold(output: Path) -> Path:
        lock = locks.lock_path(output)
        lock.write_text(json.dumps({"pid": proc.pid, "host": HOST, "started": "2026-12-07 20:00:00 UTC"}))
        return lock

    hold.pid = proc.pid
    yield hold
    proc.kill()
    proc.wait()


def _refused_by(capsys, status, holder_pid, lock):
    assert status == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"is already running (pid {holder_pid} on host {HOST}, started 2026-12-07 20:00:00 UTC)" in line, line
    assert line.endswith(f"if that job is gone, delete {lock}"), line


def test_every_command_that_writes_an_output_takes_its_lock(tmp_path, holder, capsys):
    """render, export.rollout, evaluate, train, export, merge: a running job's lock on the output refuses a second
    run with one line naming it (exit 2), before anything is written."""
    from export.rollout import main as rollout_main
    from surrogate.cli import main as surrogate_main

    data = tmp_path / "d.h5"
    assert (
        main(["simulate", str(data), "--size", "8", "--frames", "2", "--steps-per-frame", "1", "--backend", "numpy"])
        == 0
    )
    capsys.readouterr()
    onnx = str(ROOT / "models" / "crnn.onnx")
    cases = {
        "pictures": lambda out: main(["render", str(data), "--out", str(out)]),
        "r.h5": lambda out: rollout_main([onnx, "--size", "16", "--steps", "2", "--out", str(out)]),
        "eval": lambda out: surrogate_main(["evaluate", onnx, str(data), "--out", str(out)]),
        "run": lambda out: surrogate_main(["train", str(data), "--out", str(out), "--epochs", "1"]),
    }
    for name, command in cases.items():
        out = tmp_path / name
        lock = holder(out)
        _refused_by(capsys, command(out), holder.pid, lock)
        assert not out.exists(), name
        lock.unlink()
    pytest.importorskip("onnx")
    from export.__main__ import main as export_main

    out = tmp_path / "m.onnx"
    lock = holder(out)
    _refused_by(capsys, export_main([str(ROOT / "models" / "crnn.pt"), str(out)]), holder.pid, lock)
    assert not out.exists()


def test_publication_never_replaces_an_output_that_appeared_meanwhile(tmp_path):
    """A finished output is published by a hard link (no-clobber): a file another writer put at the name while this
    run wrote is kept, and this run says so; with overwrite it is replaced (rename)."""
    target = tmp_path / "x.bin"
    with pytest.raises(ValueError, match=r"x\.bin was written by another run while this one ran; it was not replaced"):
        with files.atomic_path(target, overwrite=False) as tmp:
            tmp.write_bytes(b"mine")
            target.write_bytes(b"theirs")  # the other run publishes first
    assert target.read_bytes() == b"theirs" and sorted(p.name for p in tmp_path.iterdir()) == ["x.bin"]
    files.atomic_write(target, lambda fh: fh.write(b"mine"), overwrite=True)
    assert target.read_bytes() == b"mine"
    from ch_numba import CHParams
    from ch_numba.dataset import SequenceFile

    out = tmp_path / "s.h5"
    seq = SequenceFile(out, CHParams(), frames=1, steps_per_frame=1, shape=(4, 4, 4), backend="numpy", overwrite=False)
    seq.add(0, np.full((4, 4, 4), 0.5, np.float32))
    out.write_bytes(b"theirs")
    with pytest.raises(ValueError, match="was written by another run"):
        seq.commit()
    assert out.read_bytes() == b"theirs" and sorted(p.name for p in tmp_path.iterdir()) == ["s.h5", "x.bin"]


def test_stale_temporary_files_are_removed_only_for_dead_processes(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = os.getppid()
    names = [
        f"o.h5.tmp{dead.pid}.{HOST}",  # a killed run's
        f".o.h5.tmp{dead.pid}.{HOST}",  # hidden (checkpoints, ONNX files)
        f"o.h5.tmp{live}.{HOST}",  # a running process's: kept
        f"o.h5.tmp{dead.pid}.elsewhere",  # another machine's: its pid cannot be checked here
        f"p.h5.tmp{dead.pid}.{HOST}",  # another output's
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    removed = locks.remove_stale_temps(tmp_path, "o.h5")
    assert sorted(p.name for p in removed) == sorted(names[:2])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:])


# --------------------------------------------------------------------------- a full disk


def _no_traceback_and_one_line(proc) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    return _one_error_line(proc.stderr)


def _fsize_limited(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


GENERATE = ["--sequences", "3", "--frames", "20", "--size", "16", "--steps-per-frame", "2", "--backend", "numpy"]


def test_a_file_size_limit_is_one_line_naming_the_output_and_keeps_finished_work(tmp_path):
    """EFBIG (RLIMIT_FSIZE) takes the code path of a full disk: generate stops with one line naming the merged file
    and the space it needs, keeping its finished parts (a rerun resumes); simulate --storage none likewise."""
    out = tmp_path / "g.h5"
    proc = subprocess.run(
        _cmd("ch_numba", "generate", out, *GENERATE, "--storage", "none"),
        env=ENV, capture_output=True, text=True, timeout=300, preexec_fn=_fsize_limited(400_000),
    )  # fmt: skip
    line = _no_traceback_and_one_line(proc)
    assert re.fullmatch(
        r"error: the file-size limit of this process \(ulimit -f: 400 kB\) stops writing "
        rf"{re.escape(str(out))} \(it needs up to [0-9.]+ MB\); nothing was written there; finished sequences are "
        r"kept: rerun the same command to resume",
        line,
    ), line
    assert sorted(p.name for p in (tmp_path / "g.h5.parts").iterdir()) == [
        "config.json", "seq_000000.h5", "seq_000001.h5", "seq_000002.h5",
    ]  # fmt: skip
    assert not out.exists() and _leftovers(tmp_path) == []
    assert main(["generate", str(out), *GENERATE, "--storage", "none"]) == 0  # resumes: merges the parts
    with open_dataset(out) as ds:
        assert ds.n_sequences == 3

    sim = tmp_path / "s.h5"
    proc = subprocess.run(
        _cmd("ch_numba", "simulate", sim, "--size", "32", "--frames", "8", "--steps-per-frame", "1",
             "--backend", "numpy", "--storage", "none"),
        env=ENV, capture_output=True, text=True, timeout=300, preexec_fn=_fsize_limited(600_000),
    )  # fmt: skip
    line = _no_traceback_and_one_line(proc)
    assert line.startswith(
        f"error: the file-size limit of this process (ulimit -f: 600 kB) stops writing {sim} (it "
    ), line
    assert not sim.exists() and _leftovers(tmp_path) == []


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 2 MB tmpfs (needs root: skipped where the mount fails, e.g. CI without privileges)."""
    folder = tmp_path / "tmpfs"
    folder.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def test_a_full_disk_is_one_line_without_a_crash(small_tmpfs):
    """The issue's cases on a real full disk: generate (its parts fill it), simulate --storage none, a rollout at the
    full resolution: status 2 and one line naming the output, no segfault, no "Exception ignored"."""
    gen = small_tmpfs / "gen.h5"
    proc = subprocess.run(
        _cmd("ch_numba", "generate", gen, "--sequences", "4", "--frames", "20", "--size", "32", "--steps-per-frame",
             "1", "--backend", "numpy", "--storage", "none"),
        env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    line = _no_traceback_and_one_line(proc)
    assert re.match(
        rf"error: no space left on the device of {re.escape(str(gen))}\.parts/seq_00000\d\.h5 \(it needs", line
    )
    assert _leftovers(small_tmpfs) == []
    shutil.rmtree(small_tmpfs / "gen.h5.parts")
    sim = small_tmpfs / "sim.h5"
    proc = subprocess.run(
        _cmd("ch_numba", "simulate", sim, "--size", "32", "--frames", "20", "--steps-per-frame", "1",
             "--backend", "numpy", "--storage", "none"),
        env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert "no space left on the device of" in _no_traceback_and_one_line(proc)
    shutil.rmtree(small_tmpfs / "sim.h5.resume", ignore_errors=True)
    assert _leftovers(small_tmpfs) == []
    rol = small_tmpfs / "rol.h5"
    proc = subprocess.run(
        _cmd("export.rollout", ROOT / "models" / "crnn.onnx", "--ic", "perlin", "--size", "32", "--steps", "80",
             "--full-resolution", "--storage", "none", "--threads", "1", "--out", rol),
        env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert _no_traceback_and_one_line(proc).startswith(f"error: no space left on the device of {rol} (it needs up to")
    assert sorted(p.name for p in small_tmpfs.iterdir()) == []


# --------------------------------------------------------------------------- damaged and unwritable files


def _corrupt_chunk(path: Path, sequence: int, frame: int) -> None:
    with h5py.File(path, "r") as f:
        info = f["phi"].id.get_chunk_info_by_coord((sequence, frame, 0, 0, 0))
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset)
        fh.write(b"\xff" * min(info.size, 64))


def test_a_damaged_chunk_names_file_sequence_and_frame_and_render_writes_nothing(tmp_path, capsys):
    data = tmp_path / "d.h5"
    assert main(["generate", str(data), "--sequences", "2", "--frames", "4", "--size", "8", "--steps-per-frame", "1",
                 "--backend", "numpy"]) == 0  # fmt: skip
    _corrupt_chunk(data, 1, 2)
    expected = rf"{re.escape(str(data))}: sequence 1 frame 2 is unreadable \(.*\); the file is damaged"
    with open_dataset(data) as ds:
        np.testing.assert_array_equal(ds.phi[0].shape, (4, 8, 8, 8))  # the other sequence reads
        with pytest.raises(ValueError, match=expected):
            ds.phi[1]
        with pytest.raises(ValueError, match=expected):
            ds.phi[:, 1:3]
    from ch_numba.dataset import read_frame

    with pytest.raises(ValueError, match=expected):
        read_frame(data, 1, 2)
    capsys.readouterr()
    out = tmp_path / "pictures"
    assert main(["render", str(data), "--sequence", "1", "--frames", "all", "--out", str(out)]) == 2
    assert re.fullmatch("error: " + expected + ".*", _one_error_line(capsys.readouterr().err))
    assert not out.exists() and _leftovers(tmp_path) == []  # no picture of the frames read before the damaged one
    from export.rollout import main as rollout_main

    rollout = [str(ROOT / "models" / "crnn.onnx"), "--ic", "h5", "--ic-file", str(data), "--ic-sequence", "1"]
    assert rollout_main([*rollout, "--ic-frame", "2", "--steps", "1", "--out", str(tmp_path / "r.h5")]) == 2
    assert re.fullmatch("error: " + expected + ".*", _one_error_line(capsys.readouterr().err))
    assert not (tmp_path / "r.h5").exists() and _leftovers(tmp_path) == []


def test_an_unwritable_folder_is_named_not_the_temporary_path(tmp_path, capsys, monkeypatch):
    """(Root writes anywhere, so the refusal of the file system is simulated where the lock is created.)"""
    real_open = os.open

    def refuse(path, flags, *args):
        if str(path).startswith(str(tmp_path / "ro")):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args)

    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(locks.os, "open", refuse)
    out = tmp_path / "ro" / "o.h5"
    assert main(["simulate", str(out), "--size", "4", "--frames", "1", "--backend", "numpy"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == f"error: cannot write {out}: folder {out.parent} is not writable (Permission denied)", line
    assert list((tmp_path / "ro").iterdir()) == []


def test_shard_accepts_a_negative_looking_value_and_refuses_it_in_one_line(tmp_path, capsys):
    assert main(["generate", str(tmp_path / "g.h5"), "--sequences", "2", "--shard", "-1/4"]) == 2
    assert _one_error_line(capsys.readouterr().err) == "error: --shard i/n needs 0 <= i < n, got '-1/4'"


def test_the_exit_status_table_is_the_documented_one():
    assert cli_runner.EXIT == {
        "done": 0,
        "verification failed": 1,
        "bad input or refused": 2,
        "internal error (a bug)": 3,
        "interrupted (SIGINT)": 130,
        "stdout closed (SIGPIPE)": 141,
        "terminated (SIGTERM)": 143,
    }
    guide = (ROOT / "docs" / "GUIDE.md").read_text()
    usage = (ROOT / "docs" / "usage.md").read_text()  # the commands' page (the README links to it)
    for status in ("| 0 |", "| 1 |", "| 2 |", "| 3 |", "| 130 |", "| 141 |", "| 143 |"):
        assert status in guide and status in usage


def test_a_bug_is_its_traceback_then_one_line_and_status_3(capsys):
    def buggy(argv):
        return {}["missing key"]  # a KeyError: no expected outcome

    assert cli_runner.run(buggy, []) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError" in err
    assert (
        err.strip().splitlines()[-1]
        == "error: internal error (a bug; please report it with the traceback above): 'missing key'"
    )


# --------------------------------------------------------------------------- the surrogate's commands


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    """2 sequences (1 train, 1 val) of 4 frames at 16³: the shipped models take it (downscale 2)."""
    data = tmp_path_factory.mktemp("faults") / "d.h5"
    args = ["--sequences", "2", "--frames", "4", "--size", "16", "--steps-per-frame", "10", "--val-fraction", "0.5"]
    assert main(["generate", str(data), *args, "--backend", "numpy"]) == 0
    return data


def test_a_second_rollout_is_refused_and_sigterm_ends_the_first_with_no_temporary_file(tmp_path):
    out = tmp_path / "r.h5"
    cmd = _cmd("export.rollout", ROOT / "models" / "crnn.onnx", "--size", "16", "--steps", "1000000", "--threads", "1")
    pid, second, running, status, err = _race([*cmd, "--out", str(out)], lambda: any(tmp_path.glob("r.h5.tmp*")))
    assert second.returncode == 2 and running
    assert _one_error_line(second.stderr).startswith(
        f"error: a rollout into {out} is already running (pid {pid} on host {HOST}, started "
    )
    assert status == 143 and _one_error_line(err) == "error: terminated (SIGTERM)"
    assert list(tmp_path.iterdir()) == []


def test_evaluate_nan_weights_give_one_warning_and_a_full_disk_leaves_no_plots(
    small_data, tmp_path, capsys, caplog, monkeypatch
):
    """NaN weights: the evaluation says the prediction is not finite, once, and numpy's RuntimeWarnings on NaN
    statistics do not leak. A full disk while the evaluation is written: one line naming --out, and no plots
    without evaluation.json (the files are staged and published together)."""
    torch = pytest.importorskip("torch")
    from surrogate.checkpoint import load_checkpoint, save_checkpoint
    from surrogate.cli import main as surrogate_main

    ckpt = load_checkpoint(ROOT / "models" / "crnn.pt")
    model = ckpt["model"]
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    meta = {k: v for k, v in ckpt.items() if k not in ("model", "model_state", "config", "format", "format_version")}
    nan_model = save_checkpoint(model, tmp_path / "nan.pt", **meta)
    capsys.readouterr()
    assert surrogate_main(["evaluate", str(nan_model), str(small_data), "--out", str(tmp_path / "ev")]) == 0
    err = capsys.readouterr().err + caplog.text
    assert err.count("the prediction is not finite (the model blew up); its numbers are null") == 1
    assert "Mean of empty slice" not in err and "All-NaN slice" not in err and "RuntimeWarning" not in err
    result = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert result["sequences"][0]["rmse_full_final"] is None

    from surrogate import plots

    def full(result, out, truth, pred):  # the first plot written, then the disk is full
        (Path(out) / "rmse.png").write_bytes(b"\x89PNG")
        raise OSError(errno.ENOSPC, "No space left on device", str(Path(out) / "delta.png"))

    monkeypatch.setattr(plots, "plot_all", full)
    out = tmp_path / "full"
    assert surrogate_main(["evaluate", str(ROOT / "models" / "crnn.onnx"), str(small_data), "--out", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: no space left on the device of {out} (it needs more than the "), line
    assert not out.exists() and _leftovers(tmp_path) == []


def test_training_on_non_finite_data_names_the_frame(small_data, tmp_path, capsys):
    pytest.importorskip("torch")
    from surrogate.cli import main as surrogate_main

    data = tmp_path / "inf.h5"
    shutil.copy(small_data, data)
    with open_dataset(data) as ds:
        train = int(ds.indices("train")[0])
    with h5py.File(data, "r+") as f:
        frame = f["phi"][train, 2]
        frame[2, 4, 6] = np.inf  # a voxel the network's grid (every 2nd voxel) keeps
        f["phi"][train, 2] = frame
    out = tmp_path / "run"
    assert (
        surrogate_main(["train", str(data), "--out", str(out), "--epochs", "1", "--hidden", "4", "--threads", "1"]) == 2
    )
    assert _one_error_line(capsys.readouterr().err) == (
        f"error: {data}: sequence {train} frame 2 (train split) holds non-finite values (inf); training needs finite "
        "data: make the data set again or leave that sequence out"
    )
    assert not (out / "last.pt").exists() and _leftovers(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_real_read_only_folder_is_named(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        out = folder / "o.h5"
        assert main(["simulate", str(out), "--size", "4", "--frames", "1", "--backend", "numpy"]) == 2
        assert _one_error_line(capsys.readouterr().err) == (
            f"error: cannot write {out}: folder {folder} is not writable (Permission denied)"
        )
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_a_data_set_without_its_physics_is_named_damaged(small_data, tmp_path, capsys):
    """A deleted root attribute (epsilon) made CHParams take its default silently, and a later check blamed dt
    ("above the explicit-Euler stability bound"); now the file is refused naming the attribute."""
    data = tmp_path / "noeps.h5"
    shutil.copy(small_data, data)
    with h5py.File(data, "r+") as f:
        del f.attrs["epsilon"]
    expected = f"{data} is a damaged ch3d data set: no root attribute epsilon, so its physics is unknown"
    with pytest.raises(ValueError, match=re.escape(expected)):
        open_dataset(data)
    assert main(["simulate", str(tmp_path / "o.h5"), "--ic", "h5", "--ic-file", str(data), "--frames", "1"]) == 2
    assert _one_error_line(capsys.readouterr().err) == f"error: {expected}"
