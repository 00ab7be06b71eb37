"""The documented example inputs (examples/peanut.stl, examples/gyroid32.npy): shipped, equal to what
examples/make_inputs.py writes, and accepted by the commands that docs/usage.md runs them with."""

import runpy
import shlex
from pathlib import Path

import numpy as np

from ch_numba import initial
from ch_numba.cli import main as ch_main
from ch_numba.dataset import open_dataset

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def test_shipped_inputs_are_what_make_inputs_writes(tmp_path):
    import trimesh

    make = runpy.run_path(str(EXAMPLES / "make_inputs.py"))
    assert make["main"](["--out-dir", str(tmp_path)]) == 0
    shipped, made = trimesh.load(EXAMPLES / "peanut.stl"), trimesh.load(tmp_path / "peanut.stl")
    assert shipped.is_watertight and len(shipped.faces) == 320
    np.testing.assert_array_equal(shipped.triangles, made.triangles)
    np.testing.assert_allclose(shipped.bounds, [[-1.2, -0.7130, -0.7130], [1.2, 0.7130, 0.7130]], atol=1e-4)
    field = np.load(EXAMPLES / "gyroid32.npy")
    np.testing.assert_array_equal(field, np.load(tmp_path / "gyroid32.npy"))
    assert field.shape == (32, 32, 32) and field.dtype == np.float32
    assert abs(float(field.mean(dtype=np.float64)) - 0.5) < 1e-6 and field.min() == 0.25 and field.max() == 0.75
    assert make["main"](["--out-dir", str(tmp_path)]) == 2  # refuses to replace without --overwrite


def test_readme_simulate_examples_run_on_the_shipped_inputs(tmp_path):
    phi = initial.mesh(EXAMPLES / "peanut.stl", (32, 32, 32))
    assert 0.05 < phi.mean() < 0.2 and phi[16, 16, 16] == 1.0 and phi[0, 0, 0] == 0.0  # filled, padded
    fast = ["--frames", "2", "--steps-per-frame", "2", "--backend", "numpy"]
    peanut, gyroid = tmp_path / "peanut.h5", tmp_path / "gyroid.h5"
    assert (
        ch_main(
            ["simulate", str(peanut), "--ic", "mesh", "--ic-file", str(EXAMPLES / "peanut.stl"), "--size", "16", *fast]
        )
        == 0
    )
    assert ch_main(["simulate", str(gyroid), "--ic", "npy", "--ic-file", str(EXAMPLES / "gyroid32.npy"), *fast]) == 0
    with open_dataset(peanut) as a, open_dataset(gyroid) as b:
        assert a.shape == (16, 16, 16) and b.shape == (32, 32, 32)
        np.testing.assert_array_equal(b.phi[0, 0], np.load(EXAMPLES / "gyroid32.npy"))


def _generate_commands(text: str) -> dict:
    """{output file: its arguments} of the `python -m ch_numba generate` commands in ``text`` (continuation
    lines joined, comments, ``&`` and the --shard value dropped)."""
    found = {}
    for line in text.replace("\\\n", " ").splitlines():
        if "ch_numba generate " not in line:
            continue
        args = shlex.split(line.split("ch_numba generate ", 1)[1].split("#")[0].replace("&", " "))
        if "--shard" in args:
            i = args.index("--shard")
            args[i + 1] = "K/N"
        found.setdefault(args[0], args[1:])
    return found


def test_the_shard_examples_of_the_readme_and_generate_help_agree():
    """docs/usage.md's sharding example and `python -m ch_numba --help` give the same command, and it is the unsharded
    data.h5 example's with --threads 1 --shard added (the page says the sharded file holds data.h5's sequences)."""
    from ch_numba.cli import EXAMPLES as HELP

    readme, cli = _generate_commands((ROOT / "docs" / "usage.md").read_text()), _generate_commands(HELP)
    assert readme["sharded.h5"] == cli["sharded.h5"]
    assert readme["data.h5"] == cli["data.h5"]
    unsharded = [a for a in readme["data.h5"] if a not in ("--backend", "auto")]
    assert readme["sharded.h5"] == [*unsharded, "--threads", "1", "--shard", "K/N"]
