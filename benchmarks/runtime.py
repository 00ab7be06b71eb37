"""Surrogate step speed: onnxruntime vs PyTorch eager, and the surrogate vs the solver, side by side.

1. onnxruntime CPU session settings, one step at 32³ (batch 1): graph optimisation level
   (basic vs all), intra-op threads (1 vs all cores), thread-pool spinning, and circular padding
   as Slice+Concat (the default export) vs Pad(mode=wrap); then (not with --quick) the share of
   kernel time per operator type, 3×3×3 and 1×1×1 convolutions apart (where fusing could help).
2. One network step, onnxruntime (export.runtime.Rollout: tuned session, IOBinding, state kept in
   place) vs PyTorch eager (``CRNN.step`` under ``torch.inference_mode``, same thread count), at
   32³ and 64³, batch 1 and 4: ms per step and the ratio.
3. Surrogate vs solver at equal physical time: one network step at 32³ stands for one saved frame
   of a 64³ ground truth = 400 forward-Euler steps of ``ch_numba.Stepper((64,)*3, CHParams(), "cpu")``.
4. Where a GPU is usable: onnxruntime CUDA (IOBinding, device-resident state) vs PyTorch CUDA.

The weights do not change the cost, so a random-weight CRNN is used unless --checkpoint is given.
On a shared machine numbers are noisy: each entry is the best of several rounds; with
--wait-idle each round first waits for other processes to leave the CPUs, and the run ends by
reporting the CPU share other processes used meanwhile (from /proc/stat; timings need ~0 %).

Usage (from the repository root; ``-m`` keeps a benchmarks/surrogate.py from shadowing the package;
``python benchmarks/runtime.py`` works as well):
        python -m benchmarks.runtime [--quick] [--sizes 32 64] [--batches 1 4] [--checkpoint ckpt.pt]
                                     [--wait-idle SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numba
import numpy as np
import onnxruntime as ort
import torch

import ch_numba
from export.onnx_export import build_metadata, export_model
from export.runtime import Rollout, cpu_cores
from surrogate import CRNN, load_checkpoint

if __package__:  # python -m benchmarks.runtime
    from ._common import SHARE, add_wait_idle_option, best_time, cpu_model
else:  # python benchmarks/runtime.py: this folder is first on sys.path
    from _common import SHARE, add_wait_idle_option, best_time, cpu_model


def state(n: int, size: int, hidden: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    phi = (0.5 + 0.1 * rng.standard_normal((n, 1, size, size, size))).astype(np.float32)
    h1 = np.tanh(rng.standard_normal((n, hidden, size, size, size))).astype(np.float32)
    h2 = np.tanh(rng.standard_normal((n, hidden, size, size, size))).astype(np.float32)
    return phi, h1, h2


def session(path, threads: int, level="all", spinning: bool = True, providers=("CPUExecutionProvider",)):
    so = ort.SessionOptions()
    so.graph_optimization_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=list(providers))


def ort_step_time(sess, n, size, repeats):
    phi, h1, h2 = state(n, size)
    feed = {"phi": phi, "h1": h1, "h2": h2}
    return best_time(lambda: sess.run(None, feed), repeats)


def op_profile(path, size=32, steps=5) -> list[tuple[str, float]]:
    """Share of onnxruntime's kernel time per operator type (1 thread), convolutions split by kernel size."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.enable_profiling = True
    so.profile_file_prefix = str(Path(path).with_suffix("")) + "_profile"
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feed = dict(zip(("phi", "h1", "h2"), state(1, size)))
    for _ in range(steps):
        sess.run(None, feed)
    with open(sess.end_profiling()) as fh:
        events = json.load(fh)
    totals: dict[str, float] = {}
    for e in events:
        args = e.get("args", {})
        if e.get("cat") != "Node" or "op_name" not in args:
            continue
        op = args["op_name"]
        if op in ("Conv", "FusedConv"):
            k = args.get("input_type_shape", [{}, {"float": [0]}])[1]
            k = next(iter(k.values()))[-1] if k else "?"
            op = f"Conv {k}x{k}x{k}" + (" + tanh" if op == "FusedConv" else "")
        totals[op] = totals.get(op, 0.0) + e.get("dur", 0)
    total = sum(totals.values()) or 1.0
    return sorted(((op, t / total) for op, t in totals.items()), key=lambda x: -x[1])


def torch_step_time(model, n, size, repeats, device="cpu"):
    phi, h1, h2 = (torch.from_numpy(a).to(device) for a in state(n, size))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def run():
        with torch.inference_mode():
            model.step(phi, h1, h2)
        sync()

    return best_time(run, repeats)


def rollout_step_time(runner: Rollout, n, size, repeats, steps=5):
    """Per-step time of a free-running Rollout (IOBinding, no host copies between steps)."""
    phi0 = state(n, size)[0]

    def run():
        for _ in runner.rollout(phi0, steps, every=steps):
            pass

    return best_time(run, repeats) / steps


def solver_frame_time(size=64, steps=400, repeats=3):
    stepper = ch_numba.Stepper((size,) * 3, ch_numba.CHParams(), "cpu")
    rng = np.random.default_rng(0)
    stepper.set((0.5 + 0.05 * rng.standard_normal((size,) * 3)).astype(np.float32))
    return best_time(lambda: stepper.advance(steps), repeats, min_seconds=0.5)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="onnxruntime vs PyTorch step time, and surrogate vs solver speed-up.")
    p.add_argument("--quick", action="store_true", help="32^3 only, batch 1, fewer rounds (about a minute)")
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 64], help="network grid edges (default 32 64)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4], help="batch sizes (default 1 4)")
    p.add_argument(
        "--threads",
        type=int,
        default=cpu_cores(),
        help="CPU threads for onnxruntime, PyTorch and the solver (default: all cores)",
    )
    p.add_argument("--repeats", type=int, default=5, help="rounds per measurement, best kept (default 5)")
    p.add_argument("--checkpoint", type=Path, help="a trained checkpoint (default: random weights)")
    add_wait_idle_option(p)
    a = p.parse_args(argv)
    SHARE.restart(a.wait_idle)
    if a.quick:
        a.sizes, a.batches, a.repeats = [32], [1], 3
    torch.set_num_threads(a.threads)
    numba.set_num_threads(min(a.threads, numba.config.NUMBA_NUM_THREADS))  # the solver's threads
    if a.checkpoint:
        ckpt = load_checkpoint(a.checkpoint)
    else:
        torch.manual_seed(0)
        ckpt = {"model": CRNN().eval()}
    model = ckpt["model"].float().eval()
    print(
        f"# {cpu_model()}, {os.cpu_count()} cpus ({a.threads} used), "
        f"python {platform.python_version()}, torch {torch.__version__}, onnxruntime {ort.__version__}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for mode, opset in (("slice", 18), ("wrap", 20)):
            paths[mode] = Path(tmp) / f"{mode}.onnx"
            meta = build_metadata(ckpt, opset=opset, pad_mode=mode)
            export_model(model, paths[mode], meta, opset=opset, pad_mode=mode)

        print("\n## 1. onnxruntime CPU settings: one step at 32^3, batch 1 (ms)")
        variants = [
            ("Slice+Concat pad, ORT_ENABLE_BASIC, all threads", "slice", "basic", a.threads, True),
            ("Slice+Concat pad, ORT_ENABLE_ALL,   1 thread", "slice", "all", 1, True),
            ("Slice+Concat pad, ORT_ENABLE_ALL,   all threads, no spinning", "slice", "all", a.threads, False),
            ("Slice+Concat pad, ORT_ENABLE_ALL,   all threads (runtime default)", "slice", "all", a.threads, True),
            ("Pad(wrap),        ORT_ENABLE_ALL,   all threads", "wrap", "all", a.threads, True),
        ]
        for label, mode, level, threads, spin in variants:
            t = ort_step_time(session(paths[mode], threads, level, spin), 1, 32, a.repeats)
            print(f"  {label:68s} {t * 1e3:8.2f}", flush=True)

        if not a.quick:
            print("\n## 1b. where the time goes: share of onnxruntime kernel time, 32^3, batch 1, 1 thread")
            for op, share in op_profile(paths["slice"]):
                if share >= 0.005:
                    print(f"  {op:24s} {100 * share:5.1f} %")

        print("\n## 2. one network step: onnxruntime (Rollout) vs PyTorch eager, CPU")
        print(
            f"  {'grid':>6s} {'batch':>5s} {'torch ms':>9s} {'ORT ms':>9s} {'ORT/torch speed-up':>19s} "
            f"{'ORT Mvox/s':>11s}"
        )
        runner = Rollout(paths["slice"], providers="cpu", threads=a.threads)
        cpu_times = {}
        for size in a.sizes:
            for n in a.batches:
                t_torch = torch_step_time(model, n, size, a.repeats)
                t_ort = rollout_step_time(runner, n, size, a.repeats)
                cpu_times[(size, n)] = t_ort
                print(
                    f"  {size:>5d}³ {n:>5d} {t_torch * 1e3:9.2f} {t_ort * 1e3:9.2f} {t_torch / t_ort:18.2f}x "
                    f"{n * size**3 / t_ort / 1e6:11.2f}",
                    flush=True,
                )

        print("\n## 3. surrogate vs solver at equal physical time (one saved frame = 400 solver steps)")
        t_solver = solver_frame_time(repeats=max(2, a.repeats // 2))
        t_net = cpu_times.get((32, 1)) or rollout_step_time(runner, 1, 32, a.repeats)
        print(f"  solver, ch_numba cpu, 64³, 400 steps:        {t_solver * 1e3:9.1f} ms")
        print(f"  surrogate, ONNX CPU, 32³ (64³ downscaled):   {t_net * 1e3:9.1f} ms")
        print(f"  speed-up of the surrogate:                   {t_solver / t_net:9.1f}x")
        if (32, 4) in cpu_times:
            print(f"  with batch 4 (per sequence):                 {t_solver / (cpu_times[(32, 4)] / 4):9.1f}x")

        print("\n## 4. GPU")
        has_ort_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
        if not (torch.cuda.is_available() and has_ort_cuda):
            why = "no CUDA device for torch" if not torch.cuda.is_available() else "onnxruntime has no CUDA provider"
            print(f"  skipped ({why})")
        else:
            gpu_runner = Rollout(paths["slice"], providers="cuda")
            cuda_model = model.to("cuda")
            print(f"  {'grid':>6s} {'batch':>5s} {'torch ms':>9s} {'ORT ms':>9s} {'ORT/torch':>10s}")
            for size in a.sizes:
                for n in a.batches:
                    t_torch = torch_step_time(cuda_model, n, size, a.repeats, "cuda")
                    t_ort = rollout_step_time(gpu_runner, n, size, a.repeats, steps=20)
                    print(f"  {size:>5d}³ {n:>5d} {t_torch * 1e3:9.3f} {t_ort * 1e3:9.3f} {t_torch / t_ort:9.2f}x")
    print(f"\n{SHARE.report()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
