"""The native embedding (issue 29): native/ (libch3d_embed.so, its C, C++ and Fortran hosts) built with
tools/ort_headers.sh, compared with the Python runtime, and the one table of bad inputs both refuse.

The build goes to build/native (or $CH3D_NATIVE_BUILD); headers fetched once (Debian trixie's
libonnxruntime-dev, ~7 s), then incremental. Without headers or a compiler the tests skip with the
one line that says why, except under CI (CI=true), where they fail. `make embed-test` runs this file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from export.runtime import Rollout
from export.runtime.halo import ghosted

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
BUILD = Path(os.environ.get("CH3D_NATIVE_BUILD", ROOT / "build" / "native"))
DRIVER = Path(__file__).with_name("native_driver.py")
TOL = 1e-5  # the bound after 20 steps (measured: 0.0, the same onnxruntime on one thread)


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def build():
    for tool in ("make", "gcc", "g++"):
        if shutil.which(tool) is None:
            _unavailable(f"no {tool}: the native build needs make, gcc and g++")
    r = subprocess.run(
        ["make", "-s", "-C", str(ROOT / "native"), f"BUILD={BUILD}", f"PYTHON={sys.executable}", "all"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if r.returncode:
        said = [line for line in r.stderr.splitlines() if line.startswith("ort_headers.sh:")]
        _unavailable(said[-1] if said else f"native build failed: {r.stderr[-1500:]}")
    return BUILD


def _field(shape, seed, amp=0.1):
    rng = np.random.default_rng(seed)
    return (0.5 + amp * rng.standard_normal(shape)).astype(np.float32)


def _python(model, phi0, steps, warmup=None):
    r = Rollout(MODELS / model, providers="cpu", threads=1)
    for frame in warmup if warmup is not None else []:
        r.step(frame)
    return list(r.rollout(phi0, steps=steps, every=steps, reset=warmup is None))[-1]


def _host(build, name, *args):
    r = subprocess.run([str(build / "bin" / name), *map(str, args)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_c_host_matches_python(build, tmp_path):
    """C host, .npy in and out, warmed up on 3 frames, 20 steps of crnn.onnx on 16x12x20"""
    phi0 = _field((16, 12, 20), 1)
    frames = np.stack([_field((16, 12, 20), s, 0.2) for s in (2, 3, 4)])
    np.save(tmp_path / "in.npy", phi0)
    np.save(tmp_path / "warm.npy", frames)
    out = _host(
        build,
        "host_c",
        MODELS / "crnn.onnx",
        tmp_path / "in.npy",
        tmp_path / "out.npy",
        20,
        "--warmup",
        tmp_path / "warm.npy",
        3,
    )
    assert "halo 6" in out and "mean phi" in out
    got = np.load(tmp_path / "out.npy")
    ref = _python("crnn.onnx", phi0, 20, warmup=frames)
    assert got.shape == ref.shape and np.abs(got - ref).max() <= TOL
    cold = _python("crnn.onnx", phi0, 20)
    assert np.abs(cold - ref).max() > 1e-4  # the warm-up mattered


def test_cpp_host_matches_python(build, tmp_path):
    """C++ host (RAII wrapper), raw float32 in, 20 steps of the non-conservative crnn_ablation.onnx"""
    phi0 = _field((12, 16, 16), 5)
    phi0.tofile(tmp_path / "in.raw")
    _host(
        build,
        "host_cpp",
        MODELS / "crnn_ablation.onnx",
        tmp_path / "in.raw",
        tmp_path / "out.npy",
        20,
        "--grid",
        12,
        16,
        16,
    )
    got = np.load(tmp_path / "out.npy")
    assert np.abs(got - _python("crnn_ablation.onnx", phi0, 20)).max() <= TOL


def test_fortran_host_matches_python(build, tmp_path):
    """Fortran host: crnn_paper.onnx (not cube-symmetric) on 12x16x20; phi(nz, ny, nx) is C's (X, Y, Z)"""
    if not (build / "bin" / "host_f90").exists():
        _unavailable("no gfortran: the Fortran host was not built (make setup-test installs it with apt-get)")
    phi0 = _field((12, 16, 20), 7)
    phi0.tofile(tmp_path / "in.raw")
    out = _host(
        build, "host_f90", MODELS / "crnn_paper.onnx", tmp_path / "in.raw", tmp_path / "out.raw", 20, 12, 16, 20
    )
    assert "halo 6, epsilon  1.500" in out  # metadata through the Fortran module
    got = np.fromfile(tmp_path / "out.raw", np.float32).reshape(12, 16, 20)
    ref = _python("crnn_paper.onnx", phi0, 20)
    assert np.abs(got - ref).max() <= TOL
    swapped = _python("crnn_paper.onnx", np.ascontiguousarray(phi0.transpose(2, 1, 0)), 20).transpose(2, 1, 0)
    assert np.abs(swapped - ref).max() > 1e-3  # an axis order mix-up would show


def _code_block(path, lang):
    """the one fenced ``lang`` block of a doc (what it shows is what the tests build)"""
    blocks = re.findall(rf"```{lang}\n(.*?)```", (ROOT / path).read_text(), flags=re.S)
    assert len(blocks) == 1, f"{path}: {len(blocks)} {lang} blocks"
    return blocks[0]


def test_cmake_package(build, tmp_path):
    """A host project links the library in two CMake lines: docs/embedding.md's CMakeLists.txt, built."""
    if shutil.which("cmake") is None:
        _unavailable("no cmake")
    (tmp_path / "CMakeLists.txt").write_text(_code_block("docs/embedding.md", "cmake"))
    shutil.copy(ROOT / "native" / "examples" / "host.c", tmp_path / "main.c")
    env = dict(os.environ, CMAKE_PREFIX_PATH=str(build))
    for cmd in (["cmake", "-S", tmp_path, "-B", tmp_path / "b"], ["cmake", "--build", tmp_path / "b"]):
        r = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
    phi0 = _field((8, 8, 8), 9)
    np.save(tmp_path / "in.npy", phi0)
    cmd = [tmp_path / "b" / "host_c", MODELS / "crnn.onnx", tmp_path / "in.npy", tmp_path / "out.npy", "3"]
    r = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert np.abs(np.load(tmp_path / "out.npy") - _python("crnn.onnx", phi0, 3)).max() <= TOL


def test_documented_cpp_example(build, tmp_path):
    """docs/embedding.md's C++ host, compiled with its pkg-config line and run from the repository root."""
    src = tmp_path / "rollout.cpp"
    src.write_text(_code_block("docs/embedding.md", "cpp"))
    env = dict(os.environ, PKG_CONFIG_PATH=str(build / "lib" / "pkgconfig"))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "ch3d_embed"], capture_output=True, text=True, env=env)
    assert flags.returncode == 0, flags.stderr
    r = subprocess.run(
        ["g++", "-std=c++17", str(src), *flags.stdout.split(), "-o", str(tmp_path / "rollout")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(tmp_path / "rollout")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    m = re.search(r"t = ([\d.]+): phi\[0\] = ([\d.]+), mean phi = ([\d.]+)", r.stdout)
    i = np.arange(16**3)
    phi0 = (np.float32(0.45) + np.float32(0.01) * ((i * 37) % 11).astype(np.float32)).reshape(16, 16, 16)
    ref = _python("crnn.onnx", phi0, 20)
    assert float(m[1]) == pytest.approx(20 * Rollout(MODELS / "crnn.onnx", providers="cpu").time_per_step)
    assert abs(float(m[2]) - ref[0, 0, 0]) <= TOL and abs(float(m[3]) - phi0.mean(dtype=np.float64)) <= 1e-6


def _drive(build, command, args, env=None):
    r = subprocess.run(
        [sys.executable, str(DRIVER), str(build / "lib" / "libch3d_embed.so"), command, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, **(env or {})),
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_metadata_getters(build):
    got = _drive(build, "open", {"model": str(MODELS / "crnn_ablation.onnx")})
    r = Rollout(MODELS / "crnn_ablation.onnx", providers="cpu")
    assert got["code"] == 0 and got["device"] == "cpu"
    assert (got["hidden"], got["downscale"], got["kernel"], got["min_grid"], got["halo"]) == (
        r.hidden_channels,
        r.factor,
        r.kernel,
        r.metadata["min_grid"],
        r.halo,
    )
    assert got["conservative"] == 0 and got["time_per_step"] == pytest.approx(r.time_per_step)
    assert got["meta"] == {
        "epsilon": r.metadata["epsilon"],
        "dt": r.metadata["dt"],
        "steps_per_frame": r.metadata["steps_per_frame"],
        "nothing": None,
    }


def test_batch_steps_match_python(build, tmp_path):
    """ch3d_step on a batch of 2 (n, 1, X, Y, Z), 3 steps with the states carried, then a reset onto another grid"""
    batch = np.stack([_field((8, 12, 10), 30), _field((8, 12, 10), 31, 0.2)])[:, None]
    other = _field((10, 8, 8), 32)
    np.save(tmp_path / "b.npy", batch)
    np.save(tmp_path / "o.npy", other)
    calls = [str(tmp_path / "b.npy")] * 3 + ["reset", str(tmp_path / "o.npy")]
    got = _drive(build, "steps", {"model": str(MODELS / "crnn.onnx"), "calls": calls, "out": str(tmp_path / "r")})
    assert [c for c, _ in got["results"]] == [0] * 5
    r = Rollout(MODELS / "crnn.onnx", providers="cpu", threads=1)
    for i in range(3):  # teacher forcing: the same field fed three times, the states carried
        assert np.abs(np.load(tmp_path / f"r{i}.npy") - r.step(batch)).max() <= TOL
    r.reset()
    assert np.abs(np.load(tmp_path / "r4.npy") - r.step(other)).max() <= TOL


def _onnx_model(path, names_in, names_out, metadata=None):
    import onnx
    from onnx import TensorProto, helper

    def vi(name, c):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", c, "x", "y", "z"])

    nodes = [helper.make_node("Identity", [i], [o]) for i, o in zip(names_in, names_out)]
    graph = helper.make_graph(
        nodes,
        "g",
        [vi(n, 1 if n == "phi" else 10) for n in names_in],
        [vi(n, 1 if n.startswith("phi") else 10) for n in names_out],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    if metadata is not None:
        helper.set_model_props(model, {"ch3d": json.dumps(metadata)})
    onnx.save(model, path)
    return path


def test_bad_inputs_one_table(build, tmp_path, monkeypatch):
    """docs/embedding.md's table: each bad input is refused by the Python runtime (ValueError) and the C API
    (its code), both with one line saying the same thing."""
    model = str(MODELS / "crnn.onnx")
    phi = _field((8, 8, 8), 0)
    nan, inf = phi.copy(), phi.copy()
    nan[1, 2, 3], inf[0, 0, 0] = np.nan, np.inf
    files = {
        "ok": phi,
        "nan": nan,
        "inf": inf,
        "thin": _field((2, 8, 8), 0),
        "other": _field((8, 8, 9), 0),
        "batch": _field((2, 1, 8, 8, 8), 0),
    }
    for k, a in files.items():
        np.save(tmp_path / f"{k}.npy", a)
    f = {k: str(tmp_path / f"{k}.npy") for k in files}
    calls = [f["nan"], f["inf"], f["thin"], f["ok"], f["other"], f["batch"], "reset", f["other"]]
    codes = _drive(build, "steps", {"model": model, "calls": calls})["results"]

    def py(calls):
        r = Rollout(model, providers="cpu", threads=1)
        out = []
        for c in calls:
            try:
                r.reset() if c == "reset" else r.step(np.load(c))
                out.append("")
            except ValueError as e:
                out.append(str(e))
        return out

    pytexts = py(calls)
    table = [  # (C code, C text, Python text)
        (5, "phi contains NaN or Inf values", "phi contains NaN or Inf values"),
        (5, "phi contains NaN or Inf values", "phi contains NaN or Inf values"),
        (6, "smaller than the model's kernel 3 along an axis", "smaller than the model's kernel 3 along an axis"),
        (0, "", ""),
        (
            7,
            "call ch3d_reset to start a rollout on another grid or batch",
            "call reset() to start a rollout on another grid or batch",
        ),
        (7, "call ch3d_reset", "call reset()"),
        (0, "", ""),
        (0, "", ""),
    ]
    for (code, text), py_text, (want_code, want_c, want_py) in zip(codes, pytexts, table):
        assert code == want_code and want_c in text and "\n" not in text
        assert want_py in py_text
    # files that are not a ch3d step, and onnxruntime problems: the refusal of ch3d_open / Rollout()
    (tmp_path / "text.onnx").write_text("not a model")
    cases = [
        (str(tmp_path / "missing.onnx"), {}, 2, "no such model file", "no such model file"),
        (str(tmp_path / "text.onnx"), {}, 2, "is not a readable ONNX model", "is not a readable ONNX model"),
        (
            str(_onnx_model(tmp_path / "sig.onnx", ["x"], ["y"])),
            {},
            2,
            "is not a ch3d CRNN step",
            "is not a ch3d CRNN step",
        ),
        (
            str(_onnx_model(tmp_path / "nometa.onnx", ["phi", "h1", "h2"], ["phi_next", "h1_next", "h2_next"])),
            {},
            2,
            "has no 'ch3d' metadata",
            "has no 'ch3d' metadata",
        ),
        (
            str(
                _onnx_model(
                    tmp_path / "nodt.onnx",
                    ["phi", "h1", "h2"],
                    ["phi_next", "h1_next", "h2_next"],
                    {
                        "format_version": 1,
                        "conservative": True,
                        "hidden": 10,
                        "kernel": 3,
                        "downscale": 2,
                        "steps_per_frame": 200,
                    },
                )
            ),
            {},
            2,
            "metadata lacks dt",
            "metadata lacks dt",
        ),
        (model, {"CH3D_TEST_REQUIRE_ORT_API": "999"}, 3, "is too old", "is too old"),
        (model, {"CH3D_ORT_LIB": str(tmp_path / "nolib.so")}, 11, "cannot load onnxruntime", None),
    ]
    import onnxruntime

    for path, env, want_code, want_c, want_py in cases:
        got = _drive(build, "open", {"model": path}, env=env)
        assert got["code"] == want_code and want_c in got["error"] and "\n" not in got["error"], (path, got)
        if want_py is None:
            continue
        if env.get("CH3D_TEST_REQUIRE_ORT_API"):
            monkeypatch.setattr(onnxruntime, "__version__", "1.17.1")
        with pytest.raises(ValueError, match=want_py):
            Rollout(path, providers="cpu")
        monkeypatch.undo()


def test_cuda_provider(build):
    """TF32 off on CUDA (use_tf32=0, as the Python runtime): equal to the CPU within 1e-5 where CUDA exists;
    with the CPU wheel, "cuda" is refused in one line and "auto" falls back to the CPU."""
    import onnxruntime

    got = _drive(build, "open", {"model": str(MODELS / "crnn.onnx"), "provider": "auto"})
    assert got["code"] == 0
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        assert got["device"] == "cpu"
        cuda = _drive(build, "open", {"model": str(MODELS / "crnn.onnx"), "provider": "cuda"})
        assert cuda["code"] == 4 and "provider 'cuda'" in cuda["error"] and "\n" not in cuda["error"]
        pytest.skip("this onnxruntime has no CUDA provider (the CPU wheel): TF32 not checked")
    assert got["device"] == "cuda"  # pragma: no cover - on a GPU machine with onnxruntime-gpu


def test_separate_handles_run_concurrently(build, tmp_path):
    """Two threads, two handles (two models), at once: the same fields as one after another, and as Python."""
    paths = []
    for i, shape in enumerate(((16, 16, 16), (12, 16, 20))):
        np.save(tmp_path / f"f{i}.npy", _field(shape, 20 + i))
        paths.append(str(tmp_path / f"f{i}.npy"))
    models = [str(MODELS / "crnn.onnx"), str(MODELS / "crnn_paper.onnx")]
    got = _drive(build, "threads", {"models": models, "fields": paths, "steps": 20, "out": str(tmp_path / "par")})
    assert got["codes"] == [0, 0, 0, 0] and got["max_diff"] == [0.0, 0.0]
    for i, m in enumerate(models):
        ref = _python(Path(m).name, np.load(paths[i]), 20)
        assert np.abs(np.load(tmp_path / f"par{i}.npy") - ref).max() <= TOL


def test_step_halo_matches_python(build, tmp_path):
    """ch3d_step_halo on a ghosted 12x16x8 block of a 24x16x16 box = Rollout.step_halo (and the whole box)"""
    r = Rollout(MODELS / "crnn.onnx", providers="cpu", threads=1)
    g = r.halo
    rng = np.random.default_rng(3)
    box = [_field((1, 1, 24, 16, 16), 3, 0.3)] + [
        (0.3 * rng.standard_normal((1, 10, 24, 16, 16))).astype(np.float32) for _ in range(2)
    ]
    lo, size = (12, 0, 8), (12, 16, 8)
    blocks = [np.ascontiguousarray(ghosted(a, lo, size, g)) for a in box]
    np.savez(tmp_path / "blocks.npz", phi=blocks[0], h1=blocks[1], h2=blocks[2], halo=g)
    got = _drive(
        build,
        "halo",
        {"model": str(MODELS / "crnn.onnx"), "blocks": str(tmp_path / "blocks.npz"), "out": str(tmp_path / "out.npz")},
    )
    assert got["code"] == 0, got
    c = np.load(tmp_path / "out.npz")
    py = r.step_halo(*blocks)
    whole = r.session.run(None, dict(zip(("phi", "h1", "h2"), box)))
    sl = (slice(None), slice(None), slice(12, 24), slice(0, 16), slice(8, 16))
    for name, p, w in zip(("phi", "h1", "h2"), py, whole):
        assert np.abs(c[name] - p).max() <= 1e-6
        assert np.abs(c[name] - w[sl]).max() <= 2e-6
    np.savez(tmp_path / "short.npz", phi=blocks[0], h1=blocks[1], h2=blocks[2], halo=g - 1)
    short = _drive(
        build,
        "halo",
        {"model": str(MODELS / "crnn.onnx"), "blocks": str(tmp_path / "short.npz"), "out": str(tmp_path / "x.npz")},
    )
    assert short["code"] == 8 and "less than the model's halo 6" in short["error"]
    # no-flux walls are the whole-box step's (the graph's optional walls input; native hosts leave it at its
    # default, periodic): a Rollout made with walls refuses subdomain steps in one line
    walled = Rollout(MODELS / "crnn.onnx", providers="cpu", boundary="periodic,periodic,neumann")
    with pytest.raises(ValueError, match=r"^subdomain steps \(step_halo\) take their ghost layers from the neighbours"):
        walled.step_halo(*blocks)


@pytest.mark.parametrize(
    "env, says",
    [
        (
            {"ORT_LIB": "/nonexistent/libonnxruntime.so.1.32.0"},
            "ORT_LIB=/nonexistent/libonnxruntime.so.1.32.0 is not a file",
        ),
        ({"PYTHON": "/bin/false"}, "no onnxruntime library: /bin/false has no onnxruntime wheel"),
        ({"ORT_INCLUDE_DIR": "/nonexistent"}, "ORT_INCLUDE_DIR=/nonexistent has no onnxruntime_c_api.h"),
    ],
)
def test_headers_script_refuses_in_one_line(tmp_path, env, says):
    """tools/ort_headers.sh: neither given nor found -> exit status 2 and one line saying what to set"""
    env = {**os.environ, "PYTHON": sys.executable, **env}
    r = subprocess.run(
        ["bash", str(ROOT / "tools" / "ort_headers.sh"), str(tmp_path / "ort")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("ort_headers.sh: ") and says in r.stderr
