"""`python -m ch_numba` commands: outputs checked against the library, one-line errors on bad input."""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import ch_numba
from ch_numba import cli_runner, initial
from ch_numba.cli import main
from ch_numba.dataset import open_dataset
from ch_numba.render import read_vti


def one_line_error(capsys, code, pattern):
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) >= 1 and err[-1].startswith("error: ")
    assert "Traceback" not in "\n".join(err)
    import re

    assert re.search(pattern, err[-1]), err[-1]


def test_simulate_then_info_and_render(tmp_path, capsys):
    out = tmp_path / "run.h5"
    code = main(
        [
            "simulate",
            str(out),
            "--ic",
            "perlin",
            "--size",
            "16",
            "--frames",
            "3",
            "--steps-per-frame",
            "50",
            "--seed",
            "3",
            "--frequency",
            "2",
            "--backend",
            "cpu",
        ]
    )
    assert code == 0
    phi0 = initial.perlin((16,) * 3, frequency=2, seed=3, mean=0.5, amplitude=0.1)
    with open_dataset(out) as ds:
        assert ds.phi.shape == (1, 3, 16, 16, 16)
        np.testing.assert_array_equal(ds.phi[0, 0], phi0)
        np.testing.assert_array_equal(ds.phi[0, 2], ch_numba.evolve(phi0, 100, ch_numba.CHParams()))
        assert ds.ic[0]["kind"] == "perlin" and "simulate" in ds.attrs["command"]
        last = ds.phi[0, 2]
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert "sequences 1 (a single run, no train/val split), frames 3, grid 16x16x16" in capsys.readouterr().out
    pics = tmp_path / "pics"
    assert main(["render", str(out), "--frames", "0,-1", "--out", str(pics)]) == 0
    assert (pics / "seq0000_frame0000.png").stat().st_size > 1000
    assert (pics / "seq0000_strip.png").exists() and (pics / "seq0000_energy.png").exists()
    np.testing.assert_array_equal(read_vti(pics / "seq0000_frame0002.vti")["phi"], last)


def test_simulate_from_npy_ic(tmp_path):
    arr = np.full((8, 10, 12), 0.5, np.float32)
    arr[2:5] = 0.9
    src = tmp_path / "ic.npy"
    np.save(src, arr)
    out = tmp_path / "npy.h5"
    assert (
        main(
            [
                "simulate",
                str(out),
                "--ic",
                "npy",
                "--ic-file",
                str(src),
                "--frames",
                "2",
                "--steps-per-frame",
                "10",
                "--backend",
                "cpu",
                "--storage",
                "none",
            ]
        )
        == 0
    )
    with open_dataset(out) as ds:
        np.testing.assert_array_equal(ds.phi[0, 0], arr)
        assert ds.shape == (8, 10, 12)


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["simulate", "{tmp}/a.h5", "--dt", "0.01"], r"stability bound dt < 0\.001515"),
        (["simulate", "{tmp}/a.h5", "--ic", "mesh"], "needs --ic-file"),
        (["simulate", "{tmp}/a.h5", "--ic", "npy", "--ic-file", "{tmp}/none.npy"], "none.npy"),
        (["generate", "{tmp}/g.h5", "--sequences", "2", "--shard", "2/2"], "0 <= i < n"),
        (["generate", "{tmp}/g.h5", "--sequences", "2", "--frequencies", "a,b"], "comma-separated integers"),
        (["generate", "{tmp}/nodir/g.h5", "--sequences", "2"], "does not exist"),
        (["merge", "{tmp}/nothing.h5"], "no parts to merge"),
        (["simulate", "{tmp}/a.h5", "--threads", "0"], r"--threads must be in 1\.\.\d+ \(NUMBA_NUM_THREADS\), got 0"),
        (["simulate", "{tmp}/a.h5", "--size", "8", "--frames", "0"], "--frames and --steps-per-frame must be >= 1"),
        (
            ["simulate", "{tmp}/a.h5", "--size", "8", "--steps-per-frame", "0"],
            r"--frames and --steps-per-frame must be >= 1, got 50 and 0",
        ),
        (["generate", "{tmp}/g.h5", "--sequences", "2", "--threads", "100000"], r"--threads must be in 1\.\.\d+"),
        (["generate", "{tmp}/g.h5", "--sequences", "2", "--batch", "0"], "--batch must be an integer >= 1, got 0"),
        (["info", "{tmp}/bad.h5"], "not a readable HDF5 file"),
        (["info", "{tmp}/foreign.h5"], "not a ch3d data set"),
        (["render", "{tmp}/missing.h5", "--out", "{tmp}/p"], "no such file"),
        # grids too large for memory: refused before anything is allocated or written
        (["simulate", "{tmp}/a.h5", "--size", "4000"], r"a 4000\^3 run needs at least [\d,.]+ GiB of memory"),
        (["generate", "{tmp}/g.h5", "--sequences", "2", "--size", "4000"], r"at 4000\^3 needs at least [\d,.]+ GiB"),
        (["generate", "{tmp}/g.h5", "--sequences", "2", "--ic-mean", "1.2"], r"--ic-mean must be in \(0, 1\)"),
        (["generate", "{tmp}/g.h5", "--sequences", "2", "--ic-mean", "0"], r"--ic-mean must be in \(0, 1\)"),
        (["generate", "{tmp}/g.h5", "--sequences", "2", "--ic-mean-sd", "-0.1"], "--ic-mean-sd must be a number >= 0"),
        (["generate", "{tmp}/g.h5", "--sequences", "2", "--threads", "0"], r"--threads must be in 1\.\.\d+"),
        # what the message names: a folder, random bytes as .npy, an IC outside [0, 1]
        (["info", "{tmp}"], "is a folder, not a data set file"),
        (["simulate", "{tmp}", "--size", "8"], "is a folder; give the name of the file to write"),
        (["simulate", "{tmp}/a.h5", "--ic", "npy", "--ic-file", "{tmp}"], "IC file .* is a folder, not a file"),
        (["simulate", "{tmp}/a.h5", "--ic", "npy", "--ic-file", "{tmp}/noise.npy"], "it has no NumPy header"),
        (
            ["simulate", "{tmp}/a.h5", "--ic", "npy", "--ic-file", "{tmp}/empty.npy"],
            r"^error: .*empty\.npy: the array is empty \(shape \(0, 0, 0\)\)",
        ),
        (
            ["simulate", "{tmp}/a.h5", "--ic", "h5", "--ic-file", "{tmp}/plain.h5"],
            r"^error: .*plain\.h5 is not a ch3d data set \(root attribute format=None",
        ),
        (
            ["simulate", "{tmp}/a.h5", "--ic", "npy", "--ic-file", "{tmp}/three.npy"],
            r"^error: .*three\.npy: the initial condition is outside the physical range: it has phi = 3 "
            r"\(phi is in \[0, 1\]; the solver accepts \[-0\.5, 1\.5\]\)$",
        ),
    ],
)
def test_bad_input_one_line_error(tmp_path, capsys, argv, pattern):
    (tmp_path / "bad.h5").write_bytes(b"\x00" * 100)
    (tmp_path / "noise.npy").write_bytes(bytes(range(256)) * 4)
    np.save(tmp_path / "three.npy", np.full((8, 8, 8), 3.0, np.float32))
    np.save(tmp_path / "empty.npy", np.zeros((0, 0, 0), np.float32))
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["x"] = 1
    with h5py.File(tmp_path / "plain.h5", "w") as f:  # a 5-D phi alone is not a ch3d data set
        f["phi"] = np.full((1, 1, 8, 8, 8), 0.5, np.float32)
    code = main([a.format(tmp=tmp_path) for a in argv])
    one_line_error(capsys, code, pattern)
    for left in ("a.h5", "g.h5", "a.h5.resume", "g.h5.parts"):  # nothing half-written
        assert not (tmp_path / left).exists(), left


@pytest.mark.parametrize("command", ["simulate", "generate"])
def test_backend_cuda_without_a_gpu_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch, command):
    """Before a folder or a file is made (generate used to leave OUT.h5.parts/config.json behind)."""
    from ch_numba import kernels_cuda

    monkeypatch.setattr(kernels_cuda, "is_simulator", lambda: False)
    monkeypatch.setattr(kernels_cuda, "gpu_available", lambda: False)
    extra = ["--sequences", "2"] if command == "generate" else []
    code = main(
        [
            command,
            str(tmp_path / "c.h5"),
            "--size",
            "8",
            "--frames",
            "2",
            "--steps-per-frame",
            "2",
            "--backend",
            "cuda",
            *extra,
        ]
    )
    one_line_error(capsys, code, r"^error: backend 'cuda' needs a usable CUDA GPU and driver \(none found\)")
    assert list(tmp_path.iterdir()) == []


def test_verbose_shows_the_project_debug_log_and_not_the_libraries(tmp_path):
    """-v: the project's DEBUG lines, not Numba's compiler dumps (tens of thousands of lines when the kernels are
    compiled: an empty cache folder here) nor h5py's converter messages."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "NUMBA_NUM_THREADS": "1"}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "ch_numba",
            "-v",
            "simulate",
            str(tmp_path / "v.h5"),
            "--size",
            "8",
            "--frames",
            "2",
            "--steps-per-frame",
            "2",
            "--backend",
            "auto",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stderr.splitlines()
    assert re.match(r"ch3d \d+\.\d+\.\d+", lines[0]), lines[0]  # the project's debug line: version, Python
    assert any(re.match(r"backend auto: .*-> (cpu|cuda)", line) for line in lines), lines
    assert len(lines) <= 8 and "bytecode dump" not in res.stderr and "Creating converter" not in res.stderr, lines[:20]
    assert any(p.suffix == ".nbi" for p in (tmp_path / "cache").rglob("*"))  # the kernels were compiled meanwhile


def test_ic_arguments_are_one_definition():
    """simulate and the two rollout commands share the IC arguments (initial.add_ic_arguments) and turn them
    into the same options of initial.make (initial.ic_options)."""
    from ch_numba.cli import build_parser
    from ch_numba.initial import ic_options
    from export.rollout import add_rollout_arguments

    def ic_actions(parser):
        return {
            a.dest: (tuple(a.option_strings), a.default, a.choices)
            for a in parser._actions
            if a.dest in ("ic", "ic_file", "ic_sequence", "ic_frame", "seed", "frequency", "mean", "amplitude")
        }

    simulate = build_parser()._subparsers._group_actions[0].choices["simulate"]
    rollout = __import__("argparse").ArgumentParser()
    add_rollout_arguments(rollout, "model")
    assert ic_actions(simulate) == ic_actions(rollout) and len(ic_actions(simulate)) == 8
    assert ic_options("perlin", mean=0.4) == {"mean": 0.4, "amplitude": 0.1, "frequency": 4}
    assert ic_options("h5", ic_file="d.h5", ic_sequence=2) == {"path": "d.h5", "sequence": 2, "frame": 0}
    assert ic_options("npy", ic_file="a.npy", mean=0.3) == {"path": "a.npy"}
    with pytest.raises(ValueError, match="--ic mesh needs --ic-file"):
        ic_options("mesh")


def test_only_the_expected_errors_are_one_liners(tmp_path, monkeypatch, capsys):
    """A bug (an exception type the CLIs do not expect) keeps its traceback, then one line, status 3."""
    from ch_numba import cli

    def bug(a):
        raise TypeError("a bug")

    monkeypatch.setattr(cli, "cmd_render", bug)
    assert main(["render", str(tmp_path / "x.h5"), "--out", str(tmp_path / "p")]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and 'raise TypeError("a bug")' in err
    assert err.strip().splitlines()[-1].startswith("error: internal error (a bug")


def test_one_physical_range():
    """The solver's blow-up range and the surrogate's 'physical' range (rollout warning, report, stability probe)
    are one constant."""
    import export.rollout
    from ch_numba import solver

    assert export.rollout.PHYSICAL_RANGE is solver.PHYSICAL_RANGE == (-0.5, 1.5)
    assert not hasattr(solver, "BLOWUP_RANGE")


def test_unknown_ic_is_rejected_by_argparse(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "ch_numba", "simulate", str(tmp_path / "x.h5"), "--ic", "cube"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.splitlines() == [
        "error: argument --ic: invalid choice: 'cube' (choose from 'perlin', 'sphere', 'layers', 'slab', 'random', "
        "'slice', 'mesh', 'npy', 'h5') (see --help)"
    ]


def _mains():
    import export.__main__
    import export.rollout
    import surrogate.cli

    return {
        "ch_numba": main,
        "surrogate": surrogate.cli.main,
        "export": export.__main__.main,
        "export.rollout": export.rollout.main,
    }


@pytest.mark.parametrize(
    "command, argv, message",
    [
        (
            "ch_numba",
            ["generate", "g.h5", "--sequences", "2", "--storage", "bogus"],
            "argument --storage: invalid choice",
        ),
        ("ch_numba", ["simulate"], "the following arguments are required: out"),
        ("ch_numba", ["bogus"], "argument COMMAND: invalid choice: 'bogus'"),
        ("ch_numba", [], "the following arguments are required: COMMAND"),
        ("surrogate", ["train", "d.h5", "--out", "r", "--amp", "bogus"], "argument --amp: invalid choice: 'bogus'"),
        ("surrogate", ["train", "d.h5"], "the following arguments are required: --out"),
        ("surrogate", ["rollout", "m.pt", "--out", "o.h5", "--seed", "x"], "argument --seed: invalid int value: 'x'"),
        ("export", ["m.pt", "o.onnx", "--pad-mode", "bogus"], "argument --pad-mode: invalid choice: 'bogus'"),
        ("export", ["m.pt"], "the following arguments are required: out"),
        ("export.rollout", ["m.onnx", "--out", "o.h5", "--storage", "bogus"], "argument --storage: invalid choice"),
        ("export.rollout", ["m.onnx"], "the following arguments are required: --out"),
    ],
)
def test_command_line_errors_are_one_line_for_every_command(tmp_path, monkeypatch, capsys, command, argv, message):
    """argparse's errors are docs/usage.md's one line, `error: <argparse's message> (see --help)`, exit 2, for every
    parser and subparser (ch_numba.cli_runner.ArgumentParser); nothing is written."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        _mains()[command](argv)
    assert e.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert err.startswith(f"error: {message}") and err.endswith(" (see --help)\n"), err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "command, argv",
    [
        ("ch_numba", ["generate", "--help"]),
        ("surrogate", ["train", "--help"]),
        ("export", ["--help"]),
        ("export.rollout", ["--help"]),
    ],
)
def test_help_is_still_the_full_help(capsys, command, argv):
    with pytest.raises(SystemExit) as e:
        _mains()[command](argv)
    assert e.value.code == 0
    out, err = capsys.readouterr()
    assert out.startswith("usage: python -m ") and len(out.splitlines()) > 15 and "-h, --help" in out and err == ""


@pytest.mark.parametrize("sub", ["simulate", "generate", "merge", "info", "render"])
def test_help(sub, capsys):
    with pytest.raises(SystemExit) as e:
        main([sub, "--help"])
    assert e.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_threads_and_batch_options_set_numba_threads_and_keep_the_data(tmp_path, monkeypatch):
    import threading

    import numba

    calls = []  # the solver's thread only: generate's writer thread sets its own (1, for its free energy)
    monkeypatch.setattr(
        numba,
        "set_num_threads",
        lambda n: calls.append(n) if threading.current_thread() is threading.main_thread() else None,
    )
    out = tmp_path / "t.h5"
    assert (
        main(
            [
                "generate",
                str(out),
                "--sequences",
                "2",
                "--frames",
                "2",
                "--steps-per-frame",
                "5",
                "--size",
                "8",
                "--backend",
                "cpu",
                "--threads",
                "1",
                "--batch",
                "2",
            ]
        )
        == 0
    )
    assert calls == [1]
    ref = tmp_path / "ref.h5"
    assert (
        main(
            [
                "generate",
                str(ref),
                "--sequences",
                "2",
                "--frames",
                "2",
                "--steps-per-frame",
                "5",
                "--size",
                "8",
                "--backend",
                "cpu",
            ]
        )
        == 0
    )
    with open_dataset(out) as a, open_dataset(ref) as b:
        np.testing.assert_array_equal(a.phi[:], b.phi[:])


def _simulate(out, *extra):
    return main(
        ["simulate", str(out), "--size", "8", "--frames", "2", "--steps-per-frame", "5", "--backend", "cpu", *extra]
    )


def test_existing_outputs_are_refused_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "run.h5"
    assert _simulate(out, "--seed", "3") == 0
    before = out.read_bytes()
    one_line_error(capsys, _simulate(out, "--seed", "4"), r"run\.h5 already exists; .* pass --overwrite")
    assert out.read_bytes() == before
    assert _simulate(out, "--seed", "4", "--overwrite") == 0
    with open_dataset(out) as ds:
        assert ds.seed[0] == 4
    gen = [
        "generate",
        str(tmp_path / "g.h5"),
        "--sequences",
        "1",
        "--frames",
        "2",
        "--steps-per-frame",
        "5",
        "--size",
        "8",
        "--backend",
        "cpu",
    ]
    assert main(gen) == 0
    one_line_error(capsys, main(gen), "already exists")
    assert main([*gen, "--overwrite"]) == 0
    pics = tmp_path / "pics"
    render = ["render", str(out), "--frames", "0", "--out", str(pics)]
    assert main(render) == 0
    stamp = (pics / "seq0000_frame0000.png").stat().st_mtime_ns
    one_line_error(capsys, main(render), r"seq0000_frame0000\.png already exists")
    assert (pics / "seq0000_frame0000.png").stat().st_mtime_ns == stamp
    assert main([*render, "--overwrite"]) == 0
    # other frames: their strip and energy plot would replace these
    one_line_error(
        capsys, main(["render", str(out), "--frames", "1", "--out", str(pics)]), r"seq0000_strip\.png already exists"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.h5", "pics", "run.h5"]  # no temporaries


@pytest.mark.parametrize(
    "frames, pattern",
    [
        ("", "--frames lists no value"),
        (",", "--frames lists no value"),
        ("0,1,0", "--frames lists frame 0 twice"),
        ("1,-1", r"--frames lists frame 1 twice \(1 and -1\)"),
    ],
)
def test_render_refuses_empty_or_repeated_frames(tmp_path, capsys, frames, pattern):
    out = tmp_path / "run.h5"
    assert _simulate(out) == 0
    one_line_error(capsys, main(["render", str(out), "--frames", frames, "--out", str(tmp_path / "p")]), pattern)
    assert not (tmp_path / "p").exists()


def test_an_initial_condition_outside_the_range_is_refused_before_the_resume_folder(tmp_path, capsys, caplog):
    np.save(tmp_path / "ic.npy", np.full((8, 8, 8), -0.7, np.float32))
    code = main(["simulate", str(tmp_path / "a.h5"), "--ic", "npy", "--ic-file", str(tmp_path / "ic.npy")])
    one_line_error(capsys, code, r"the initial condition is outside the physical range: it has phi = -0\.7")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ic.npy"]
    assert caplog.records == []  # the error line alone: no warning about the same values before it
    np.save(tmp_path / "ic.npy", np.full((8, 8, 8), 1.2, np.float32))  # outside [0, 1], inside what the solver takes
    assert (
        main(
            [
                "simulate",
                str(tmp_path / "b.h5"),
                "--ic",
                "npy",
                "--ic-file",
                str(tmp_path / "ic.npy"),
                "--frames",
                "1",
                "--backend",
                "numpy",
            ]
        )
        == 0
    )
    assert "values span [1.2, 1.2], outside φ ∈ [0, 1]" in caplog.text


@pytest.mark.parametrize("seed", ["1180591620717411303424", str(2**63), "-1"])
def test_a_seed_out_of_range_is_one_line_before_anything_is_written_and_a_rerun_works(tmp_path, capsys, seed):
    out = tmp_path / "o.h5"
    one_line_error(capsys, _simulate(out, "--seed", seed), rf"^error: --seed must be in 0\.\.{2**63 - 1}, got {seed}$")
    assert list(tmp_path.iterdir()) == []  # no o.h5.resume left to block the rerun
    gen = ["generate", str(tmp_path / "g.h5"), "--sequences", "1", "--size", "8", "--frames", "1", "--seed", seed]
    one_line_error(capsys, main(gen), rf"^error: --seed must be in 0\.\.{2**63 - 1}, got {seed}$")
    assert list(tmp_path.iterdir()) == []
    assert _simulate(out, "--seed", str(2**63 - 1)) == 0  # the largest seed works
    with open_dataset(out) as ds:
        assert int(ds.seed[0]) == 2**63 - 1


def test_info_shows_the_split_of_a_generated_data_set(data_file, capsys):
    """A generated data set has a train/val split (a simulate file shows "a single run" instead)."""
    assert main(["info", str(data_file)]) == 0
    assert "sequences 6 (4 train, 2 val), frames 8" in capsys.readouterr().out


def test_a_closed_pipe_ends_quietly(data_file):
    """`python -m ch_numba info f.h5 | head -1`: the reader is gone before the summary is written."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ch_numba", "info", str(data_file)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()  # before the child (still importing) writes anything
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == ""


def test_generate_names_a_corrupt_part_and_makes_it_again(tmp_path, capsys, caplog):
    args = ["--sequences", "3", "--frames", "2", "--steps-per-frame", "5", "--size", "8", "--backend", "cpu"]
    out = tmp_path / "g.h5"
    assert main(["generate", str(out), *args, "--shard", "0/1"]) == 0
    part = tmp_path / "g.h5.parts" / "seq_000001.h5"
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2])  # truncated, as by a full disk
    one_line_error(capsys, main(["merge", str(out)]), r"part .*seq_000001\.h5 is unreadable \(.*\); rerun `generate`")
    assert not out.exists()
    assert main(["generate", str(out), *args]) == 0
    assert "seq_000001.h5 is unreadable" in caplog.text and "making sequence 1 again" in caplog.text
    ref = tmp_path / "ref.h5"
    assert main(["generate", str(ref), *args]) == 0
    with open_dataset(out) as a, open_dataset(ref) as b:
        np.testing.assert_array_equal(a.phi[:], b.phi[:])


def test_the_merged_file_records_the_merge_and_the_commands_of_its_parts(tmp_path):
    """Root attribute command: the merge's (it was shard 0's); part_commands: the shards' (distinct, in the order
    of the sequences). The unsharded generate merges its own parts: its command in both."""
    import json
    import shlex

    args = ["--sequences", "3", "--frames", "2", "--steps-per-frame", "2", "--size", "8", "--backend", "cpu"]
    out, one = tmp_path / "m.h5", tmp_path / "one.h5"

    def line(*argv):
        return " ".join(["python -m ch_numba", *map(shlex.quote, map(str, argv))])

    for k in (1, 0):
        assert main(["generate", str(out), *args, "--shard", f"{k}/2"]) == 0
    assert main(["merge", str(out)]) == 0
    assert main(["generate", str(one), *args]) == 0
    with open_dataset(out) as ds, open_dataset(one) as ref:
        assert ds.attrs["command"] == line("merge", out)
        assert json.loads(ds.attrs["part_commands"]) == [
            line("generate", out, *args, "--shard", f"{k}/2") for k in (0, 1)
        ]
        assert ref.attrs["command"] == line("generate", one, *args)
        assert json.loads(ref.attrs["part_commands"]) == [ref.attrs["command"]]
        np.testing.assert_array_equal(ds.phi[:], ref.phi[:])


def test_pictures_leave_the_matplotlib_backend_alone(tmp_path, monkeypatch):
    """render draws on Figure + FigureCanvasAgg: no matplotlib.use (it would switch a notebook's backend), no
    pyplot."""
    import matplotlib

    from ch_numba import render

    def refuse(*args, **kwargs):
        raise AssertionError("matplotlib.use called by a library function")

    monkeypatch.setattr(matplotlib, "use", refuse)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # any `import matplotlib.pyplot` fails
    phi = initial.perlin((8, 8, 8), frequency=2, seed=1)
    render.plot_slices(phi, tmp_path / "s.png")
    render.plot_frames([phi, phi], [0.0, 1.0], tmp_path / "f.png")
    render.plot_energy([0.0, 1.0, 2.0], [3.0, 2.0, 1.5], tmp_path / "e.png")
    for name in ("s.png", "f.png", "e.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_the_same_generate_twice_at_once_is_refused_and_sigterm_cleans_up(tmp_path):
    """Two identical runs at once: the second stops with one line naming the first (its shard lock); SIGTERM
    (a Slurm time limit, scancel) ends the first with one line, deleting its unfinished part and its lock."""
    out = tmp_path / "c.h5"
    parts, lock = tmp_path / "c.h5.parts", tmp_path / "c.h5.parts" / "shard-0-of-2.lock"
    cmd = [
        sys.executable,
        "-m",
        "ch_numba",
        "generate",
        str(out),
        "--sequences",
        "2",
        "--frames",
        "400",
        "--steps-per-frame",
        "20000",
        "--size",
        "8",
        "--backend",
        "cpu",
        "--threads",
        "1",
        "--shard",
        "0/2",
    ]
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not lock.exists() and first.poll() is None:
            time.sleep(0.05)
        assert lock.exists(), "the first run should hold its shard's lock"
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert first.poll() is None, "the first run should still be running"
        err = second.stderr.strip().splitlines()
        assert second.returncode == 2 and len(err) == 1 and "Traceback" not in second.stderr
        assert re.fullmatch(
            rf"error: generate --shard 0/2 into {re.escape(str(parts))} is already running \(pid "
            rf"{first.pid} on host {re.escape(socket.gethostname())}, started .*\); if that job is "
            rf"gone, delete {re.escape(str(lock))}",
            err[0],
        ), err[0]
        first.send_signal(signal.SIGTERM)
        err = first.communicate(timeout=120)[1].strip().splitlines()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 143 and err[-1] == (
        "error: terminated (SIGTERM); finished sequences are kept: rerun the same command to resume"
    )
    assert sorted(p.name for p in parts.iterdir()) == ["config.json"]  # no lock, no temporary part left


@pytest.mark.parametrize("exc, status, line", [
    (KeyboardInterrupt, 130, "error: interrupted (SIGINT)"),
    (cli_runner.Terminated, 143, "error: terminated (SIGTERM)"),
])  # fmt: skip
def test_a_signal_swallowed_by_a_callback_is_delivered_again(capsys, exc, status, line):
    """A KeyboardInterrupt raised where Python cannot propagate it (a ``__del__``, a ctypes callback of Numba's
    compiler) is "Exception ignored" and lost by default — the command ran on to status 0 (a flaky SIGINT
    test). Under :func:`cli_runner.run` the signal is sent again and ends the command as usual."""

    class DiesOnDelete:
        def __del__(self):
            raise exc

    def body(argv):
        DiesOnDelete()  # its __del__ raises: an unraisable KeyboardInterrupt
        for _ in range(500):  # 5 s: interrupted long before
            time.sleep(0.01)
        return 0

    # SIGINT handled as in an interactive run (a background `make test &` starts with SIGINT ignored, where no
    # KeyboardInterrupt can come from a signal in the first place)
    interactive = signal.signal(signal.SIGINT, signal.default_int_handler)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    hook = sys.unraisablehook
    started = time.monotonic()
    try:
        assert cli_runner.run(body) == status
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    finally:
        signal.signal(signal.SIGINT, interactive)
    assert time.monotonic() - started < 2.5
    assert capsys.readouterr().err.strip() == line  # no "Exception ignored ..." block
    assert sys.unraisablehook is hook


@pytest.mark.parametrize("cleanup_error", [AttributeError, ValueError, OSError])
@pytest.mark.parametrize(
    "signal_exc, status, line",
    [
        (cli_runner.Terminated, 143, "error: terminated (SIGTERM)"),
        (KeyboardInterrupt, 130, "error: interrupted (SIGINT)"),
    ],
)
def test_a_cleanup_that_fails_while_a_signal_unwinds_reports_the_signal(
    capsys, cleanup_error, signal_exc, status, line
):
    """A ``finally`` that raises while SIGTERM/SIGINT unwinds the stack (a zip member or HDF5 file closed mid-write)
    replaces the KeyboardInterrupt by its own exception: the run still ends as the signal did, in one line, not as a
    bug (3) or bad input (2). The same exception without a signal behind it keeps its own outcome."""

    def body(argv):
        try:
            raise signal_exc()
        finally:
            raise cleanup_error("closing a half-written file")

    interactive = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert cli_runner.run(body) == status
    finally:
        signal.signal(signal.SIGINT, interactive)
    assert capsys.readouterr().err.strip() == line

    def plain(argv):
        raise cleanup_error("closing a half-written file")

    expected = 2 if issubclass(cleanup_error, cli_runner.EXPECTED_ERRORS) else 3  # bad input; a bug
    assert cli_runner.run(plain) == expected
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("closing a half-written file")
