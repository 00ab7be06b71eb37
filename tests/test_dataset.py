"""Data sets: layout and contents against independent recomputation, crash safety, shards, bad files."""

import io
import json
import logging
import os
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
from conftest import SMALL_DATASET as SMALL
from conftest import assert_same_data
from conftest import read_dataset_arrays as read_all

import ch_numba
from ch_numba import dataset, initial
from ch_numba.dataset import DatasetConfig, Progress, generate, merge, open_dataset, part_path, parts_dir
from ch_numba.params import CHParams


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("ds") / "small.h5"
    generate(path, DatasetConfig(**SMALL), CHParams(), backend="cpu", progress=False)
    return path


def test_layout_and_contents_match_independent_recomputation(small):
    cfg = DatasetConfig(**SMALL)
    p = CHParams()
    with open_dataset(small) as ds:
        assert ds.phi.shape == (3, 3, 12, 12, 12) and ds.phi.dtype == np.float32
        assert ds.attrs["format"] == "ch3d-dataset" and ds.attrs["steps_per_frame"] == 20
        assert ds.params == p
        assert list(ds.split).count("val") == 1 and list(ds.split).count("train") == 2
        np.testing.assert_allclose(ds.time, [0.0, 0.02, 0.04])
        for i in range(3):
            spec = cfg.sequence_spec(i)
            ic = spec["ic"]
            assert ds.seed[i] == spec["seed"] and ds.burn_in[i] == spec["burn_in"] and ds.ic[i] == ic
            assert ds.t0[i] == pytest.approx(spec["burn_in"] * 20 * p.dt)
            phi0 = initial.perlin(
                (12,) * 3, frequency=ic["frequency"], seed=ic["seed"], mean=ic["mean"], amplitude=ic["amplitude"]
            )
            frames = ds.sequence(i)
            np.testing.assert_array_equal(frames[0], ch_numba.evolve(phi0, 20 * spec["burn_in"], p))
            for k in range(2):
                np.testing.assert_array_equal(frames[k + 1], ch_numba.evolve(frames[k], 20, p))
            for k in range(3):
                assert ds.phi_mean[i, k] == pytest.approx(np.mean(frames[k], dtype=np.float64), abs=1e-15)
                assert ds.free_energy[i, k] == pytest.approx(ch_numba.free_energy(frames[k], p), rel=1e-14)
            assert np.ptp(ds.phi_mean[i]) < 1e-6  # mass conserved (float32 state)
        assert ds.summary().startswith(str(small))
    assert not parts_dir(small).exists()


def test_sequence_depends_only_on_seed_and_index():
    a = DatasetConfig(**SMALL)
    b = DatasetConfig(**{**SMALL, "sequences": 10})
    assert a.sequence_spec(2) == b.sequence_spec(2)
    assert a.sequence_spec(1) != a.sequence_spec(2)
    assert DatasetConfig(**{**SMALL, "seed": 6}).sequence_spec(2) != a.sequence_spec(2)


def test_log_burn_in_covers_every_decade_and_uniform_is_unchanged():
    """--burn-in-law log: b = ⌊(K+1)^u⌋ − 1, so P(b < 10^j − 1) = j / log10(K+1): equal shares per
    decade (checked on 4000 draws against the exact law); the uniform default keeps its draws and
    its config JSON (data sets made before the option resume)."""
    K = 9999  # log10(K + 1) = 4 decades
    log_cfg = DatasetConfig(**{**SMALL, "sequences": 4000, "burn_in_frames": K, "burn_in_law": "log"})
    b = np.array([log_cfg.sequence_spec(i)["burn_in"] for i in range(4000)])
    assert b.min() >= 0 and b.max() <= K
    for j in (1, 2, 3):
        assert np.mean(b < 10**j - 1) == pytest.approx(j / 4, abs=0.03)  # binomial sd ≈ 0.007
    uni = DatasetConfig(**{**SMALL, "burn_in_frames": K})
    rng = np.random.default_rng([SMALL["seed"], 1])
    rng.integers(1, 2**31 - 1), rng.normal(), rng.integers(3)  # the IC seed, mean and frequency draws
    assert uni.sequence_spec(1)["burn_in"] == int(rng.integers(0, K + 1))
    assert "burn_in_law" not in json.loads(uni.to_json()) and json.loads(log_cfg.to_json())["burn_in_law"] == "log"
    with pytest.raises(ValueError, match="--burn-in-law must be one of uniform, log"):
        DatasetConfig(**{**SMALL, "burn_in_law": "normal"})


def test_shards_then_merge_equal_one_process(small, tmp_path):
    out = tmp_path / "sharded.h5"
    for k in (1, 0):
        generate(out, DatasetConfig(**SMALL), CHParams(), backend="cpu", shard=f"{k}/2", progress=False)
        assert not out.exists()
    merge(out)
    assert_same_data(read_all(out), read_all(small))
    assert not parts_dir(out).exists()


@pytest.mark.parametrize("batch, shards", [(3, None), (2, 2), (5, None)])
def test_batches_give_the_data_of_single_runs(small, tmp_path, batch, shards):
    """Members with different burn-ins (1, 2, 0 frames here) share a batch; members join when one finishes;
    a batch larger than the sequences is cut down: the data equal the unbatched run's, bit for bit."""
    out = tmp_path / f"batched{batch}.h5"
    if shards is None:
        generate(out, DatasetConfig(**SMALL), CHParams(), backend="cpu", progress=False, batch=batch)
    else:
        for k in range(shards):
            generate(
                out,
                DatasetConfig(**SMALL),
                CHParams(),
                backend="cpu",
                shard=f"{k}/{shards}",
                progress=False,
                batch=batch,
            )
        merge(out)
    assert_same_data(read_all(out), read_all(small))


def test_spectral_batches_give_the_data_of_single_runs(tmp_path):
    cfg, p = DatasetConfig(**{**SMALL, "steps_per_frame": 3}), CHParams(scheme="spectral", dt=0.5)
    generate(tmp_path / "one.h5", cfg, p, backend="cpu", progress=False)
    generate(tmp_path / "two.h5", cfg, p, backend="cpu", progress=False, batch=2)
    assert_same_data(read_all(tmp_path / "two.h5"), read_all(tmp_path / "one.h5"))


def test_batch_blowup_names_the_sequence_and_leaves_no_files(tmp_path):
    out = tmp_path / "blow2.h5"
    p = CHParams()
    object.__setattr__(p, "dt", 1.2 * p.stable_dt())
    with pytest.raises(ch_numba.BlowUpError, match=r"^sequence \d: simulation blew up at step \d+"):
        generate(out, DatasetConfig(**{**SMALL, "amplitude": 0.5}), p, backend="cpu", progress=False, batch=3)
    assert not list(parts_dir(out).glob("seq_*")) and not list(tmp_path.glob("*.tmp*"))
    with pytest.raises(ValueError, match="--batch must be an integer >= 1, got 0"):
        generate(tmp_path / "b0.h5", DatasetConfig(**SMALL), CHParams(), backend="cpu", progress=False, batch=0)


def test_merge_refuses_missing_sequences(tmp_path):
    out = tmp_path / "half.h5"
    generate(out, DatasetConfig(**SMALL), CHParams(), backend="cpu", shard="0/2", progress=False)
    with pytest.raises(ValueError, match=r"1 of 3 sequences missing \(1\)"):
        merge(out)
    assert not out.exists()


def test_rerun_with_other_arguments_refused(tmp_path):
    out = tmp_path / "x.h5"
    generate(out, DatasetConfig(**SMALL), CHParams(), backend="cpu", shard="0/3", progress=False)
    with pytest.raises(ValueError, match="different arguments.*frames"):
        generate(out, DatasetConfig(**{**SMALL, "frames": 4}), CHParams(), backend="cpu", shard="1/3", progress=False)


@pytest.mark.parametrize("storage, tol", [("none", 0.0), ("gzip", 0.0), ("scaleoffset", 1e-4), ("float16", 5e-4)])
def test_storage_options(small, tmp_path, storage, tol):
    out = tmp_path / f"{storage}.h5"
    generate(out, DatasetConfig(**{**SMALL, "storage": storage}), CHParams(), backend="cpu", progress=False)
    ref = read_all(small)
    with open_dataset(out) as ds:
        phi = ds.phi[:]
        assert phi.dtype == np.float32
        err = np.abs(phi - ref["phi"]).max()
        assert err <= tol
        np.testing.assert_array_equal(ds.free_energy, ref["free_energy"])  # computed before lossy storage


def _generate_cmd(out, **over):
    cfg = {**SMALL, "sequences": 6, "frames": 4, "steps_per_frame": 300, "size": 24, **over}
    return [
        sys.executable,
        "-m",
        "ch_numba",
        "generate",
        str(out),
        "--sequences",
        str(cfg["sequences"]),
        "--frames",
        str(cfg["frames"]),
        "--steps-per-frame",
        str(cfg["steps_per_frame"]),
        "--size",
        str(cfg["size"]),
        "--burn-in-frames",
        str(cfg["burn_in_frames"]),
        "--seed",
        str(cfg["seed"]),
        "--backend",
        "cpu",
    ]


@pytest.fixture(scope="module")
def killed_ref(tmp_path_factory):
    """The uninterrupted run (batch 1) the SIGKILL tests compare with."""
    ref = tmp_path_factory.mktemp("kill") / "ref.h5"
    subprocess.run(_generate_cmd(ref), check=True, env={**os.environ, "NUMBA_NUM_THREADS": "2"}, capture_output=True)
    return ref


@pytest.mark.parametrize("batch", [None, "3"])
def test_resume_after_sigkill_gives_identical_data(tmp_path, killed_ref, batch):
    """Killed mid-run, then resumed: the same data as one uninterrupted run; with --batch 3 the members
    have different burn-ins (1, 2, 0, 2, 1, 2 frames) and the resumed run uses another batch (2)."""
    env = {**os.environ, "NUMBA_NUM_THREADS": "2"}
    out = tmp_path / "killed.h5"
    extra = [] if batch is None else ["--batch", batch]
    proc = subprocess.Popen(_generate_cmd(out) + extra, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = parts_dir(out)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("seq_*.h5"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(parts.glob("seq_*.h5"))
    assert 2 <= len(done) < 6, "kill should land in the middle of the run"
    assert not out.exists()
    extra = [] if batch is None else ["--batch", "2"]
    res = subprocess.run(_generate_cmd(out) + extra, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert f"resuming: {len(done)} of 6" in res.stderr
    assert_same_data(read_all(out), read_all(killed_ref))


def test_blowup_names_sequence_and_writes_nothing(tmp_path):
    out = tmp_path / "blow.h5"
    cfg = DatasetConfig(**{**SMALL, "amplitude": 0.5})
    p = CHParams()
    object.__setattr__(p, "dt", 1.2 * p.stable_dt())  # unstable on purpose
    with pytest.raises(ch_numba.BlowUpError, match=r"sequence 0: simulation blew up at step \d+"):
        generate(out, cfg, p, backend="cpu", progress=False)
    assert not out.exists()
    assert not list(parts_dir(out).glob("seq_*.h5"))
    assert not list(parts_dir(out).glob("*.tmp*"))


def test_foreign_corrupt_and_missing_files(tmp_path, small):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["phi"] = np.zeros((1, 1, 4, 4, 4))
    with pytest.raises(ValueError, match="not a ch3d data set"):
        open_dataset(foreign)
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(Path(small).read_bytes()[:2000])
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        open_dataset(corrupt)
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        open_dataset(text)
    with pytest.raises(ValueError, match="no such file"):
        open_dataset(tmp_path / "missing.h5")
    incomplete = tmp_path / "incomplete.h5"
    with h5py.File(incomplete, "w") as f:
        f.attrs["format"] = "ch3d-dataset"
        f.attrs["format_version"] = 1
    with pytest.raises(ValueError, match="incomplete ch3d data set"):
        open_dataset(incomplete)


@pytest.mark.parametrize(
    "over, match",
    [
        ({"sequences": 0}, "--sequences"),
        ({"val_fraction": 1.0}, "--val-fraction"),
        ({"storage": "zip"}, "unknown storage"),
        ({"frequencies": ()}, "frequencies"),
    ],
)
def test_bad_config(over, match):
    with pytest.raises(ValueError, match=match):
        DatasetConfig(**{**SMALL, **over})


def test_existing_output_refused(small):
    with pytest.raises(ValueError, match="already exists"):
        generate(small, DatasetConfig(**SMALL), CHParams(), backend="cpu", progress=False)


def test_config_json_records_arguments(tmp_path):
    out = tmp_path / "c.h5"
    generate(out, DatasetConfig(**SMALL), CHParams(), backend="cpu", shard="0/3", progress=False)
    recipe = json.loads((parts_dir(out) / "config.json").read_text())
    assert recipe["config"]["sequences"] == 3 and recipe["params"]["epsilon"] == 3.0


# --------------------------------------------------------------------------- concurrent runs, recipes, progress


def _lock_file(parts, name, pid, host):
    """A lock file as another run's PartsLock writes it."""
    parts.mkdir(parents=True, exist_ok=True)
    (parts / name).write_text(
        json.dumps(
            {
                "pid": pid,
                "host": host,
                "started": "2026-01-01 00:00:00 UTC",
                "command": "python -m ch_numba generate ...",
                "token": "0" * 32,
            }
        )
    )


def test_a_running_shard_is_refused_naming_it_while_other_shards_run(tmp_path):
    out, host, live = tmp_path / "l.h5", socket.gethostname(), os.getppid()  # pytest's parent: a running process
    parts = parts_dir(out)
    _lock_file(parts, "shard-0-of-2.lock", live, host)
    with pytest.raises(
        ValueError,
        match=rf"^generate --shard 0/2 into {parts} is already running \(pid {live} on "
        rf"host {host}, started 2026-01-01 00:00:00 UTC\); if that job is gone, "
        rf"delete {parts / 'shard-0-of-2.lock'}$",
    ):
        generate(out, DatasetConfig(**SMALL), CHParams(), backend="cpu", shard="0/2", progress=False)
    assert not list(parts.glob("seq_*")) and not list(parts.glob("*.tmp*"))
    generate(out, DatasetConfig(**SMALL), CHParams(), backend="cpu", shard="1/2", progress=False)  # beside it
    assert sorted(p.name for p in parts.iterdir()) == ["config.json", "seq_000001.h5", "shard-0-of-2.lock"]
    with pytest.raises(ValueError, match=rf"^cannot merge {out}: a shard is still running \(pid {live} on host "):
        merge(out)
    assert not out.exists() and not (parts / "merge.lock").exists()
    _lock_file(parts, "shard-0-of-2.lock", 4242, "elsewhere")  # another machine's: its pid cannot be checked here
    with pytest.raises(ValueError, match=r"already running \(pid 4242 on host elsewhere, .*delete .*shard-0-of-2"):
        generate(out, DatasetConfig(**SMALL), CHParams(), backend="cpu", shard="0/2", progress=False)
    (parts / "shard-0-of-2.lock").unlink()  # what the message says to do once that job is known to be gone
    generate(out, DatasetConfig(**SMALL), CHParams(), backend="cpu", shard="0/2", progress=False)
    merge(out)
    with open_dataset(out) as ds:
        assert ds.n_sequences == 3


def test_a_stale_lock_of_this_host_is_taken_over(tmp_path, small, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid no longer runs: a run killed with SIGKILL leaves such a lock
    out = tmp_path / "s.h5"
    _lock_file(parts_dir(out), "shard-0-of-1.lock", dead.pid, socket.gethostname())
    generate(out, DatasetConfig(**SMALL), CHParams(), backend="cpu", progress=False)
    assert f"took over the stale lock {parts_dir(out) / 'shard-0-of-1.lock'} (pid {dead.pid} on host" in caplog.text
    assert_same_data(read_all(out), read_all(small))
    assert not parts_dir(out).exists()


def test_parts_are_checked_against_the_folder_config(tmp_path):
    """The folder's config.json holds the physics, scheme, sizes and seeds, not the throughput options; an
    existing part made with other arguments is named (not merged, not silently replaced)."""
    out, cfg = tmp_path / "r.h5", DatasetConfig(**SMALL)
    generate(out, cfg, CHParams(), backend="cpu", shard="0/3", progress=False)
    generate(out, cfg, CHParams(), backend="numpy", shard="1/3", batch=2, progress=False)  # another backend, batch
    with pytest.raises(
        ValueError,
        match=r"was started with different arguments \(dt, epsilon\); rerun with the "
        r"same arguments or delete that folder",
    ):
        generate(out, cfg, CHParams(epsilon=2.0, dt=5e-4), backend="cpu", shard="2/3", progress=False)
    with pytest.raises(ValueError, match=r"different arguments \(.*scheme.*\)"):
        generate(out, cfg, CHParams(scheme="spectral", dt=0.5), backend="cpu", shard="2/3", progress=False)
    with pytest.raises(ValueError, match=r"different arguments \(size\)"):
        generate(out, DatasetConfig(**{**SMALL, "size": 10}), CHParams(), backend="cpu", shard="2/3", progress=False)
    other = tmp_path / "o.h5"
    generate(other, cfg, CHParams(epsilon=2.0), backend="cpu", shard="2/3", progress=False)
    mine = part_path(parts_dir(out), 2)
    shutil.copy(part_path(parts_dir(other), 2), mine)  # somebody else's part in this folder
    pattern = rf"{mine} was made with other arguments than {parts_dir(out) / 'config.json'} \(epsilon\); delete it"
    with pytest.raises(ValueError, match="^" + pattern):
        generate(out, cfg, CHParams(), backend="cpu", shard="2/3", progress=False)
    with pytest.raises(ValueError, match=rf"^cannot merge {out}: {pattern}"):
        merge(out)
    assert not out.exists() and mine.exists()
    mine.unlink()
    generate(out, cfg, CHParams(), backend="cpu", shard="2/3", progress=False)
    merge(out)
    with open_dataset(out) as ds:
        assert list(ds.attrs["backend"].split(",")) == ["cpu", "numpy"]


def test_config_json_is_written_once_by_concurrent_starts(tmp_path):
    """Shards starting together: exactly one creates config.json (complete, via a hard link), the others
    find it and check it."""
    from ch_numba.dataset import _create_new

    path = tmp_path / "config.json"
    assert _create_new(path, b'{"a": 1}') is True
    assert _create_new(path, b'{"a": 2}') is False
    assert path.read_bytes() == b'{"a": 1}' and [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_progress_lines_without_a_terminal(caplog):
    """Without a bar: a line per finished sequence, at most one per interval (the first and the last always),
    with count, elapsed time, ETA = elapsed · remaining / done and the voxel-update rate."""
    caplog.set_level(logging.INFO, logger="ch_numba")
    times = iter([0.0, 10.0, 20.0, 100.0, 110.0])
    report = Progress(4, "d.h5", 1e9, bar=False, interval=60.0, clock=lambda: next(times))
    for _ in range(4):
        report.frame()
        report.frame()
        report.sequence()
    report.close()
    assert [r.getMessage() for r in caplog.records] == [
        "d.h5: 1/4 sequences (25 %), 0:00:10 elapsed, ETA 0:00:30, 0.2 Gvox-updates/s",
        "d.h5: 3/4 sequences (75 %), 0:01:40 elapsed, ETA 0:00:33, 0.06 Gvox-updates/s",  # 90 s after the first
        "d.h5: 4/4 sequences (100 %), 0:01:50 elapsed, ETA 0:00:00, 0.0727 Gvox-updates/s",
    ]


def test_generate_without_a_terminal_logs_each_sequence(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="ch_numba")
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal, as in a Slurm log
    monkeypatch.setattr(dataset.generation, "PROGRESS_INTERVAL", 0.0)
    generate(tmp_path / "p.h5", DatasetConfig(**SMALL), CHParams(), backend="cpu")
    lines = [r.getMessage() for r in caplog.records if "sequences (" in r.getMessage()]
    assert [line.split(",")[0] for line in lines] == [
        f"p.h5: {i}/3 sequences ({round(100 * i / 3)} %)" for i in (1, 2, 3)
    ]
    assert lines[-1].split(", ")[2] == "ETA 0:00:00"
