"""Surrogate cost in PyTorch: step time and memory against grid size, and training throughput.

1. Forward step: one ``CRNN.step(phi, h1, h2)`` (eager, ``torch.no_grad``, batch 1, float32,
   hidden states given) on N³ network grids, N = 16, 24, 32, 48, 64, on the CPU and, where
   ``torch.cuda.is_available()``, on CUDA (synchronised). Each entry is the best of several
   rounds of repeated calls. Every layer is a convolution or a pointwise op over the grid, so the
   cost should be linear in the voxels V = N³: the script prints time per voxel and a
   least-squares fit t = a + b·V with its R² (a: fixed per-call overhead, b: cost per voxel).
   PyTorch picks its CPU convolution kernel per shape (``slow_conv3d``, im2col + GEMM, or oneDNN's
   ``mkldnn_convolution``); the table names the kernels one step ran (torch.profiler), since a
   switch changes the cost per voxel.
2. Memory per voxel, measured in a fresh subprocess per size (so no allocator cache or earlier
   peak of another size is counted): after imports, the model and a warm-up step at 8³, the child
   allocates the state φ, h1, h2 at N³ (21 float32 channels: 84 B/voxel), resets the kernel's
   high-water mark of its resident set (``echo 5 > /proc/self/clear_refs``, Linux ≥ 4.0; VmHWM
   then equals the current VmRSS), runs two steps and reads VmHWM from /proc/self/status.
   Peak extra = VmHWM − VmRSS before the steps: the outputs (another 84 B/voxel) plus the
   intermediate activations alive at the peak, plus whatever the allocator and oneDNN keep for a
   new shape; the state itself is not included. On CUDA the same is read from
   ``torch.cuda.max_memory_allocated``. RSS moves in pages and allocator chunks, so small grids
   are coarse; the fit over the large grids gives the per-voxel cost.
3. Training throughput: sequences per second of the training step of ``surrogate.train`` (free
   rollout of seq-len − 1 = 9 steps from frame 0, voxel-wise MSE, backward, Adam step), batch 4,
   at 16³ and 32³ network grids, random data (φ = 0.5 + 0.1·N(0, 1)); a warm-up iteration, then the mean over a
   few iterations. No data loading (the loader reads a few MiB per batch; the model dominates).

4. Training levers (``--part levers``), the training step of (3) at a 32³ network grid (batch 4,
   seq-len 10, i.e. 9 steps, forward + backward + Adam), every variant once per round, rounds
   interleaved, best and median of the rounds reported, speed-ups against "before" = today's
   step as it ran before these levers (the paper-architecture CRNN, float32, 1×1 convolutions
   through ``nn.Conv3d``):

   - ``plain``: 1×1 convolutions as batched matrix products (:class:`surrogate.cells.PointwiseConv3d`);
   - ``+cl``: ``channels_last_3d`` model and input (1×1 as conv, as the probe of the issue);
   - ``+bf16``: ``torch.autocast("cpu", bfloat16)`` around the rollout (``--amp bf16``);
   - ``eq dense``: the cube-equivariant CRNN with materialised kernels (``conv3d``);
   - ``eq``: the equivariant CRNN, stencils first (:mod:`surrogate.equivariant`, fast path);
   - ``ddp 2x1``: the last variant in two processes of one thread each (DistributedDataParallel,
     gloo, batch 2 per process = the same global batch 4; ``torchrun --nproc_per_node 2``), the
     throughput of the two together.

   The in-process variants use ``--threads`` threads (default: all CPUs). Then the training
   memory of one step on 21-frame sub-sequences (plain, equivariant, +bf16, +``--bptt 5``), each in
   a fresh process, measured as in (2).

The weights do not change the cost, so a random-weight CRNN is used.
On a shared machine timings are noisy: each entry is the best of several rounds, --wait-idle lets each
round first wait for other processes to leave the CPUs, and the run ends by printing the share of
the CPUs other processes used meanwhile.

Usage:  python benchmarks/crnn_step.py [--part all|step|levers] [--sizes 16 24 32 48 64]
                                      [--train-sizes 16 32] [--threads N] [--rounds R]
                                      [--wait-idle SECONDS]
        (``python -m benchmarks.crnn_step ...`` works as well)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

from surrogate import CRNN
from surrogate.cells import PointwiseConv3d
from surrogate.equivariant import SymmetricConv3d
from surrogate.train import _UnrolledModel  # the wrapper training runs (and hands to DistributedDataParallel)

if __package__:  # python -m benchmarks.crnn_step
    from ._common import SHARE, add_wait_idle_option, best_time, cpu_model
else:  # python benchmarks/crnn_step.py (also the memory children): this folder is first on sys.path
    from _common import SHARE, add_wait_idle_option, best_time, cpu_model

HIDDEN = 10


def state(n: int, device, batch: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    phi = 0.5 + 0.1 * torch.randn((batch, 1, n, n, n), generator=g)
    h1 = torch.tanh(torch.randn((batch, HIDDEN, n, n, n), generator=g))
    h2 = torch.tanh(torch.randn((batch, HIDDEN, n, n, n), generator=g))
    return phi.to(device), h1.to(device), h2.to(device)


def step_time(model, n: int, device) -> float:
    phi, h1, h2 = state(n, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def one():
        with torch.no_grad():
            model.step(phi, h1, h2)
        sync()

    return best_time(one)


def conv_kernels(model, n: int, device) -> str:
    """Which ATen convolution kernels one step runs at N³, from torch.profiler: e.g. "slow_conv3d 45"
    or "mkldnn 18 + slow_conv3d 27" (PyTorch chooses the CPU kernel per shape)."""
    from torch.profiler import ProfilerActivity, profile

    phi, h1, h2 = state(n, device)
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        model.step(phi, h1, h2)
    kinds = {
        "aten::mkldnn_convolution": "mkldnn",
        "aten::slow_conv3d_forward": "slow_conv3d",
        "aten::cudnn_convolution": "cudnn",
    }
    counts = {kinds[e.key]: e.count for e in prof.key_averages() if e.key in kinds}
    return " + ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "other"


def linear_fit(voxels, seconds) -> tuple[float, float, float]:
    """(a [s], b [s/voxel], R²) of the least-squares line t = a + b·V."""
    v, t = np.asarray(voxels, float), np.asarray(seconds, float)
    b, a = np.polyfit(v, t, 1)
    r2 = 1 - np.sum((t - (a + b * v)) ** 2) / np.sum((t - t.mean()) ** 2)
    return float(a), float(b), float(r2)


# -- memory: one fresh process per size -------------------------------------------------------------------
def _status_kib(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key}")


def child_memory(n: int, device_name: str, threads: int) -> dict:
    torch.set_num_threads(threads)
    device = torch.device(device_name)
    torch.manual_seed(0)
    model = CRNN().to(device).eval()
    with torch.no_grad():  # warm-up: kernels, thread pools, allocator set up at 8³
        model.step(*state(8, device))
    phi, h1, h2 = state(n, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.max_memory_allocated()
    with open("/proc/self/clear_refs", "w") as fh:  # VmHWM := VmRSS
        fh.write("5")
    before_rss = _status_kib("VmRSS")
    with torch.no_grad():
        for _ in range(2):
            out = model.step(phi, h1, h2)
    del out
    result = {"size": n, "voxels": n**3, "rss_extra": (_status_kib("VmHWM") - before_rss) * 1024}
    if device.type == "cuda":
        torch.cuda.synchronize()
        result["cuda_extra"] = torch.cuda.max_memory_allocated() - before
    result["convolutions"] = conv_kernels(model, n, device)  # here: the profiler's chatter on stderr stays in the child
    return result


def memory(n: int, device_name: str, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run(
        [sys.executable, __file__, "--child-memory", str(n), "--device-name", device_name, "--threads", str(threads)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if out.returncode != 0:
        raise RuntimeError(f"memory child for {n}^3 failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- training throughput ----------------------------------------------------------------------------------
def train_throughput(n: int, device, seq_len: int = 10, batch: int = 4, iters: int = 3) -> float:
    """Sequences per second of rollout + MSE + backward + Adam step (warm-up excluded)."""
    torch.manual_seed(0)
    model = CRNN().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(1)
    seq = (0.5 + 0.1 * torch.randn((batch, seq_len, 1, n, n, n), generator=g)).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def one():
        pred = model.rollout(seq[:, 0], seq_len - 1)
        loss = torch.nn.functional.mse_loss(pred, seq[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()

    one()
    SHARE.wait_idle()
    t0 = time.perf_counter()
    for _ in range(iters):
        one()
    return batch * iters / (time.perf_counter() - t0)


# -- training levers ------------------------------------------------------------------------------------------
#: name -> (equivariant, 1×1 as matmul, stencils first, channels_last_3d, bf16 autocast)
LEVERS = {
    "before": (False, False, True, False, False),
    "plain": (False, True, True, False, False),
    "plain +cl": (False, False, True, True, False),
    "plain +bf16": (False, True, True, False, True),
    "plain +cl +bf16": (False, False, True, True, True),
    "eq dense": (True, True, False, False, False),
    "eq": (True, True, True, False, False),
    "eq +bf16": (True, True, True, False, True),
}
DDP_NAME = "ddp 2x1: eq +bf16"


def lever_step(name: str, n: int, batch: int, seq_len: int = 10, ddp: bool = False):
    """One training step of variant ``name`` as a closure (the class switches are set on every
    call, so variants can be interleaved); ``ddp``: through DistributedDataParallel (gloo)."""
    equivariant, matmul, stencils, cl, bf16 = LEVERS[name]
    torch.manual_seed(0)
    fmt = torch.channels_last_3d if cl else torch.contiguous_format
    model = CRNN(equivariant=equivariant).to(memory_format=fmt)
    net = _UnrolledModel(model)
    if ddp:
        net = torch.nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(1)
    seq = 0.5 + 0.1 * torch.randn((batch, seq_len, 1, n, n, n), generator=g)
    phi0 = seq[:, 0].contiguous(memory_format=fmt)

    def one():
        PointwiseConv3d.as_matmul, SymmetricConv3d.stencils_first = matmul, stencils
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred, _ = net(phi0, seq_len - 1)
        loss = torch.nn.functional.mse_loss(pred.float(), seq[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return one


def child_ddp(n: int, batch: int, iters: int) -> dict:
    """One rank of the DDP variant (RANK, WORLD_SIZE, MASTER_ADDR/PORT in the environment)."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    one = lever_step("eq +bf16", n, batch, ddp=True)
    one()  # warm-up
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(iters):
        one()
    dist.barrier()
    seconds = time.perf_counter() - t0
    dist.destroy_process_group()
    return {"seconds": seconds}


def ddp_throughput(n: int, batch: int = 4, iters: int = 3, world: int = 2) -> float:
    """Sequences per second of ``world`` one-thread processes, batch // world each."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    procs = []
    for rank in range(world):
        env = dict(
            os.environ,
            RANK=str(rank),
            WORLD_SIZE=str(world),
            LOCAL_RANK=str(rank),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            OMP_NUM_THREADS="1",
        )
        cmd = [
            sys.executable,
            __file__,
            "--child-ddp",
            str(n),
            "--ddp-batch",
            str(batch // world),
            "--ddp-iters",
            str(iters),
        ]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, outs):
        if p.returncode != 0:
            raise RuntimeError(f"DDP child failed: {err[-2000:]}")
    seconds = max(json.loads(o.strip().splitlines()[-1])["seconds"] for o, _ in outs)
    return batch * iters / seconds


def levers(n: int, rounds: int, threads: int) -> dict:
    """Interleaved rounds over LEVERS (in this process) and the DDP variant (two children)."""
    steps = {name: lever_step(name, n, 4) for name in LEVERS}
    for one in steps.values():
        one()  # warm-up: kernels, allocator
    rates: dict[str, list[float]] = {name: [] for name in [*LEVERS, DDP_NAME]}
    for r in range(rounds):
        for name, one in steps.items():
            SHARE.wait_idle()
            t0 = time.perf_counter()
            one()
            rates[name].append(4 / (time.perf_counter() - t0))
        SHARE.wait_idle()
        rates[DDP_NAME].append(ddp_throughput(n))
        print(f"  round {r + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in rates.items()), flush=True)
    PointwiseConv3d.as_matmul, SymmetricConv3d.stencils_first = True, True
    return {"size": n, "threads": threads, "rates": rates, "memory": train_memory(n)}


#: (label, equivariant, bf16, bptt K) of the training-memory rows; sub-sequences of 21 frames (20 steps)
MEMORY_CASES = (
    ("plain, float32", False, False, None),
    ("eq, float32", True, False, None),
    ("eq +bf16", True, True, None),
    ("eq +bf16, --bptt 5", True, True, 5),
)


def child_train_memory(n: int, equivariant: bool, bf16: bool, bptt: int | None, batch: int = 4, frames: int = 21):
    """Peak extra resident memory of one training step (rollout + backward, as surrogate.train with
    ``bptt``), measured like :func:`child_memory`: VmHWM reset after a warm-up, then one step."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = CRNN(equivariant=equivariant)
    seq = 0.5 + 0.1 * torch.randn((batch, frames, 1, n, n, n))
    with torch.no_grad():
        model.rollout(seq[:, 0, :, :8, :8, :8], 1)
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    before = _status_kib("VmRSS")
    steps = frames - 1
    K = bptt or steps
    phi, hidden = seq[:, 0], None
    for s0 in range(0, steps, K):
        k = min(K, steps - s0)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred, hidden = model.rollout(phi, k, hidden=hidden, return_hidden=True)
        torch.nn.functional.mse_loss(pred.float(), seq[:, s0 + 1 : s0 + 1 + k]).backward()
        phi, hidden = pred[:, -1].detach(), tuple(h.detach() for h in hidden)
    extra = (_status_kib("VmHWM") - before) * 1024
    return {"extra": extra, "per_sample_step": extra / (batch * K)}


def train_memory(n: int = 32) -> list[dict]:
    rows = []
    for label, eq, bf16, bptt in MEMORY_CASES:
        cmd = [sys.executable, __file__, "--child-train-memory", str(n), "--memory-case", label]
        out = subprocess.run(
            cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=900
        )
        if out.returncode != 0:
            raise RuntimeError(f"training-memory child failed: {out.stderr[-2000:]}")
        rows.append({"case": label, **json.loads(out.stdout.strip().splitlines()[-1])})
        print(f"  training memory {label}: {rows[-1]['extra'] / 2**20:.0f} MiB", flush=True)
    return rows


def levers_report(res: dict) -> str:
    base = float(np.median(res["rates"]["before"]))
    lines = [
        f"Training throughput at {res['size']}³ (batch 4, seq-len 10, forward + backward + Adam), "
        f"{res['threads']} thread(s) in process, {len(res['rates']['before'])} interleaved rounds:",
        "",
        "| variant | sequences/s best | median | min | speed-up (median / median of before) |",
        "|---|---|---|---|---|",
    ]
    for name, v in res["rates"].items():
        lines.append(
            f"| {name} | {max(v):.3f} | {float(np.median(v)):.3f} | {min(v):.3f} | {float(np.median(v)) / base:.2f}× |"
        )
    if res.get("memory"):
        lines += [
            "",
            f"Training memory at {res['size']}³ (batch 4, 21-frame sub-sequences = 20 steps, one step: rollout + "
            "backward; peak extra resident memory, fresh process per row):",
            "",
            "| variant | peak extra | per sequence and backpropagated step |",
            "|---|---|---|",
        ]
        for r in res["memory"]:
            lines.append(f"| {r['case']} | {r['extra'] / 2**20:.0f} MiB | {r['per_sample_step'] / 2**20:.1f} MiB |")
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------------------------------
def run(device, sizes, train_sizes, threads) -> dict:
    torch.manual_seed(0)
    model = CRNN().to(device).eval()
    rows = []
    for n in sizes:
        t = step_time(model, n, device)
        mem = memory(n, str(device), threads)
        rows.append({"size": n, "voxels": n**3, "seconds": t, **mem})
        extra = mem.get("cuda_extra", mem["rss_extra"])
        print(
            f"  {device.type} {n:3d}^3: {t * 1e3:9.3f} ms/step  {t / n**3 * 1e9:7.2f} ns/voxel  "
            f"peak extra {extra / 2**20:8.1f} MiB = {extra / n**3:6.0f} B/voxel",
            flush=True,
        )
    a, b, r2 = linear_fit([r["voxels"] for r in rows], [r["seconds"] for r in rows])
    big = [r for r in rows if r["size"] >= 32] or rows
    mem_key = "cuda_extra" if device.type == "cuda" else "rss_extra"
    ma, mb, mr2 = linear_fit([r["voxels"] for r in big], [r[mem_key] for r in big])
    train = {n: train_throughput(n, device) for n in train_sizes}
    for n, s in train.items():
        print(f"  {device.type} training {n}^3: {s:.3f} sequences/s (seq-len 10, batch 4)", flush=True)
    return {
        "device": str(device),
        "rows": rows,
        "fit": {"a": a, "b": b, "r2": r2},
        "memory_fit": {"a": ma, "b": mb, "r2": mr2, "sizes": [r["size"] for r in big]},
        "train": train,
    }


def report(res: dict) -> str:
    fit, mfit = res["fit"], res["memory_fit"]
    key = "cuda_extra" if res["device"].startswith("cuda") else "rss_extra"
    lines = [
        f"### {res['device']}",
        "",
        "| grid | voxels | ms / step | ns / voxel | fit a + b·V (ms) | peak extra memory (MiB) | bytes / voxel "
        "| conv kernels per step |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        pred = fit["a"] + fit["b"] * r["voxels"]
        lines.append(
            f"| {r['size']}³ | {r['voxels']:,} | {r['seconds'] * 1e3:.3f} | "
            f"{r['seconds'] / r['voxels'] * 1e9:.2f} | {pred * 1e3:.3f} | {r[key] / 2**20:.1f} | "
            f"{r[key] / r['voxels']:.0f} | {r['convolutions']} |"
        )
    lines += [
        "",
        f"Time fit: t = {fit['a'] * 1e3:.3f} ms + {fit['b'] * 1e9:.3f} ns × V, R² = {fit['r2']:.5f}.",
        f"Memory fit over {', '.join(f'{n}³' for n in mfit['sizes'])}: {mfit['a'] / 2**20:.1f} MiB + "
        f"{mfit['b']:.0f} B × V, R² = {mfit['r2']:.5f}.",
        "",
        "Training throughput (seq-len 10, batch 4, rollout + MSE + backward + Adam): "
        + ", ".join(f"{n}³: {s:.3f} sequences/s" for n, s in res["train"].items())
        + ".",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[16, 24, 32, 48, 64], help="network grid edges N")
    p.add_argument("--train-sizes", type=int, nargs="*", default=[16, 32], help="grid edges of the training test")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch CPU threads")
    add_wait_idle_option(p)
    p.add_argument(
        "--part",
        choices=("all", "step", "levers"),
        default="all",
        help="step: step time, memory, throughput (1-3); levers: the training levers (4); all: both",
    )
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the levers (default %(default)s)")
    p.add_argument("--child-memory", type=int, help=argparse.SUPPRESS)
    p.add_argument("--child-ddp", type=int, help=argparse.SUPPRESS)
    p.add_argument("--child-train-memory", type=int, help=argparse.SUPPRESS)
    p.add_argument("--memory-case", help=argparse.SUPPRESS)
    p.add_argument("--ddp-batch", type=int, default=2, help=argparse.SUPPRESS)
    p.add_argument("--ddp-iters", type=int, default=3, help=argparse.SUPPRESS)
    p.add_argument("--device-name", default="cpu", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child_memory:
        print(json.dumps(child_memory(a.child_memory, a.device_name, a.threads)))
        return 0
    if a.child_train_memory:
        _, eq, bf16, bptt = next(c for c in MEMORY_CASES if c[0] == a.memory_case)
        print(json.dumps(child_train_memory(a.child_train_memory, eq, bf16, bptt)))
        return 0
    if a.child_ddp:
        print(json.dumps(child_ddp(a.child_ddp, a.ddp_batch, a.ddp_iters)))
        return 0
    torch.set_num_threads(a.threads)
    SHARE.restart(a.wait_idle)
    print(f"torch {torch.__version__}, {cpu_model()}, {a.threads} threads, {os.cpu_count()} CPUs", flush=True)
    t0 = time.perf_counter()
    if a.part in ("all", "step"):
        results = [run(torch.device("cpu"), a.sizes, a.train_sizes, a.threads)]
        if torch.cuda.is_available():
            results.append(run(torch.device("cuda"), a.sizes, a.train_sizes, a.threads))
        else:
            print("  cuda: not available (torch.cuda.is_available() is False)")
        print()
        for res in results:
            print(report(res))
            print()
    if a.part in ("all", "levers"):
        print(levers_report(levers(32, a.rounds, a.threads)))
        print()
    print(f"benchmark time {time.perf_counter() - t0:.0f} s; {SHARE.report()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
