r"""Training of the CRNN: curriculum teacher forcing, checkpoints, exact resume, DDP.

Objective (one batch of N sub-sequences of T frames, network grid V voxels)::

    loss = 1/(N (T−1) V) Σ_n Σ_{k=1}^{T−1} Σ_v (φ̂_k − φ_k)²                 voxel-wise MSE
         + λ · 1/(N (T−1)) Σ_n Σ_k (⟨φ̂_k⟩ − ⟨φ_0⟩)²                      non-conservative only

φ̂_k is the network's prediction of frame k; the inputs follow the curriculum of
``surrogate.curriculum`` (the first L(e) frames from the ground truth, then the network's own
output; with ``input_noise`` σ > 0 every input gets zero-mean Gaussian noise, see
:meth:`surrogate.CRNN.rollout`, drawn from a generator seeded by (seed, epoch, batch, rank) so that
resumed runs stay exact). ⟨·⟩ is the volume mean (the mass); λ = ``mass_penalty`` is a weak
penalty on its change, used by the non-conservative ablation only (the conservative network keeps ⟨φ̂_k⟩ = ⟨φ_0⟩ to
round-off by construction). Adam, constant learning rate (1e-4 as the paper).

Validation: every sequence of the "val" split, all stored frames, free-running from frame 0
(no teacher forcing, no augmentation), float32; ``val_loss`` is the MSE over all predicted frames
and voxels, averaged over the sequences. The model with the lowest val_loss among epochs
≥ ``best_from`` is kept as ``best.pt``.

Run folder (RUN_DIR)::

    last.pt       checkpoint after every epoch (atomic): model + config, optimiser and grad-scaler
                  state, ``epoch`` (0-based index of the last finished epoch), RNG states (torch,
                  CUDA, numpy, python), ``train_config`` (TrainConfig as a dict), ``code_version``
                  (package version + ``git describe --always --dirty``), ``dataset``
                  (path, sizes, split, root attributes, boundary: :mod:`surrogate.trainset`),
                  ``boundary`` (the training data's "X,Y,Z"), ``history`` (the log rows), losses, best
    best.pt       the same for the best epoch
    log.csv       epoch, train_loss, val_loss, teacher_frames, lr, seconds (rewritten from the
                  checkpoint's history, so it always matches last.pt)
    tensorboard/  the same scalars for TensorBoard (if the tensorboard package is installed)

Resume (``resume=True``): the model, optimiser, RNG states and history come from last.pt and
training continues with epoch ``epoch + 1`` up to ``epochs``. Each epoch's batches are a pure
function of (seed, epoch) (``surrogate.data.SubSequenceSampler``), so a run killed at any
moment and resumed ends with weights identical bit for bit to an uninterrupted run (same device,
thread count and software).

Distributed data parallel: started by ``torchrun --nproc_per_node P -m surrogate train ...`` (any
number of nodes), each process trains on its share of every global batch of ``batch · P``
sequences (DistributedDataParallel averages the gradients: with a number of training sequences
divisible by P the run equals a single process with batch ``batch · P`` up to round-off, except
the conservative head's last bias, which the mean-flux removal cuts off the output: its gradient
is round-off, which Adam turns into steps of ±lr); gloo on CPU, nccl on CUDA (one GPU per
process, LOCAL_RANK).
Validation is sharded the same way and reduced. Only rank 0 writes files and logs; after every
epoch the replicas' weights are compared (they must be identical).

Mixed precision: ``torch.autocast`` in bfloat16 (or, on CUDA, float16 with a GradScaler) for the
training forward pass (``amp``: on CUDA by default, on the CPU with ``--amp bf16``); the loss, φ
and the flux divergence stay float32, so mass is conserved as without it. Validation runs in
float32.

Truncated backpropagation (``bptt`` K): a batch's rollout is backpropagated in pieces of K steps
(``_Trainer._forward_backward``); memory then grows with K, not with the sub-sequence length
(per sequence and step at a 32³ network grid: ~60 MB for the paper's model, ~90 MB for the
equivariant one, whose stencils-first convolutions keep 4 stencil channels per input, ~45 MB for
it under bf16; ``benchmarks/crnn_step.py --part levers``).
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import logging
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ch_numba.files import atomic_write
from ch_numba.locks import output_lock, remove_stale_temps
from ch_numba.provenance import code_version

from .checkpoint import load_checkpoint, save_checkpoint
from .config import AMP_CHOICES, TrainConfig
from .curriculum import teacher_frames
from .data import SubSequenceSampler, validation_batches
from .device import _Dist, amp_dtype, resolve_device
from .model import CRNN
from .trainset import RESUME_FIXED, check_finite, check_resumable, dataset_info, open_splits  # noqa: F401

__all__ = ["TrainConfig", "AMP_CHOICES", "train", "resolve_device", "LOG_COLUMNS"]

log = logging.getLogger(__name__)

LOG_COLUMNS = ("epoch", "train_loss", "val_loss", "teacher_frames", "lr", "seconds")


def _initial_weights(c: TrainConfig) -> dict:
    """The model weights of checkpoint ``c.init_from`` for this run's architecture.

    conservative, hidden and kernel must match. An unconstrained source for an equivariant run is
    projected onto the cube-symmetric kernels (:meth:`CRNN.to_equivariant`), an equivariant source
    for a plain run materialised (:meth:`CRNN.to_plain`); both are logged.
    """
    saved = load_checkpoint(c.init_from, map_location="cpu")
    arch = saved.get("config", {})
    mine = {"conservative": c.conservative, "hidden": c.hidden, "kernel": c.kernel}
    if any(arch.get(k) != v for k, v in mine.items()):
        theirs = {k: arch.get(k) for k in mine}
        raise ValueError(f"--init-from {c.init_from}: its architecture {theirs} differs from this run's {mine}")
    model = saved["model"]
    if c.equivariant and not model.equivariant:
        projected = model.to_equivariant()
        before = _kernel_norm(model)
        kept = _kernel_norm(projected.to_plain()) / before if before > 0 else 1.0
        log.info(
            "--init-from %s: projected its unconstrained weights onto the cube-equivariant kernels "
            "(%d -> %d parameters; %.1f %% of the k^3-kernel norm kept)",
            c.init_from,
            model.param_count(),
            projected.param_count(),
            100 * kept,
        )
        model = projected
    elif model.equivariant and not c.equivariant:
        log.info("--init-from %s: materialised its equivariant kernels into an unconstrained model", c.init_from)
        model = model.to_plain()
    return model.state_dict()


def _kernel_norm(model: CRNN) -> float:
    """Frobenius norm of all k×k×k kernels of a plain CRNN (1×1 convolutions excluded)."""
    norms = [
        m.weight.detach().double().norm()
        for m in model.modules()
        if isinstance(m, nn.Conv3d) and m.kernel_size != (1, 1, 1)
    ]
    return float(torch.stack(norms).norm()) if norms else 0.0


# --------------------------------------------------------------------------- model wrapper


class _UnrolledModel(nn.Module):
    """``model.rollout`` as ``forward``, so DistributedDataParallel sees the whole sequence."""

    def __init__(self, model: CRNN):
        super().__init__()
        self.model = model

    def forward(self, phi0, steps: int, teacher=None, input_noise: float = 0.0, generator=None, hidden=None):
        return self.model.rollout(phi0, steps, teacher, input_noise, generator, hidden=hidden, return_hidden=True)


_Rollout = _UnrolledModel  # its name before issue 23 (benchmarks/crnn_step.py imported it)


# --------------------------------------------------------------------------- helpers


def _rng_states() -> dict:
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(tuple(states["numpy"]))
    py = states["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


def _write_csv(path: Path, history: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LOG_COLUMNS, lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow({k: row[k] for k in LOG_COLUMNS})
    atomic_write(path, lambda fh: fh.write(buf.getvalue().encode()))


def _tensorboard(folder: Path, purge_step: int | None):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        log.info("tensorboard is not installed: logging to CSV only")
        return None
    return SummaryWriter(log_dir=str(folder), purge_step=purge_step)


# --------------------------------------------------------------------------- training


def mass_change(pred: torch.Tensor, phi0: torch.Tensor) -> torch.Tensor:
    """⟨φ̂_k⟩ − ⟨φ_0⟩ for pred (N, K, 1, X, Y, Z) and phi0 (N, 1, X, Y, Z): (N, K)."""
    return pred.mean(dim=(-4, -3, -2, -1)) - phi0.mean(dim=(-4, -3, -2, -1))[:, None]


def objective(pred: torch.Tensor, seq: torch.Tensor, conservative: bool, mass_penalty: float) -> torch.Tensor:
    """Training loss of predictions pred (N, T−1, 1, X, Y, Z) for the sequences seq (N, T, 1, X, Y, Z)."""
    loss = F.mse_loss(pred, seq[:, 1:])
    if not conservative and mass_penalty > 0:
        loss = loss + mass_penalty * mass_change(pred, seq[:, 0]).pow(2).mean()
    return loss


class _Trainer:
    def __init__(self, config: TrainConfig, dist_: _Dist, command: str = ""):
        self.cfg = c = config
        self.command = command
        self.code_version = code_version()  # package version + git describe (provenance of the weights)
        self.dist = dist_
        self.out = Path(c.out)
        if c.threads:
            torch.set_num_threads(c.threads)
        self.device = resolve_device(c.device, self.dist.local_rank)
        self.amp = amp_dtype(c.amp, self.device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.dist.init(self.device)
        self.main = self.dist.rank == 0
        if not self.main:
            log.setLevel(logging.WARNING)
        self.lock = None
        if self.main:  # one training run at a time in --out (ch_numba.locks), taken before --out is looked at
            if self.out.exists() and not self.out.is_dir():
                raise ValueError(f"--out {self.out} exists and is not a folder")
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.lock = output_lock(self.out, f"training into {self.out}", command).acquire()
        try:
            self._setup(c)
        except BaseException:
            self.close()  # the lock and the data set's files
            raise

    def _setup(self, c: TrainConfig) -> None:
        """The data, the model, the optimiser and the loader (once the run holds --out)."""
        # data: metadata only; frames are read per batch (surrogate.trainset: the checks, the checkpoint's record)
        self.train_ds, self.val_ds, self.max_len = open_splits(c)
        self.data_info = dataset_info(self.train_ds, self.val_ds)

        last = self.out / "last.pt"
        if c.resume and not last.exists():
            raise ValueError(f"--resume: no checkpoint {last} to continue")
        if not c.resume and last.exists():
            raise ValueError(
                f"{self.out} already holds a run ({last}); use --resume to continue it or choose another --out"
            )
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"--out {self.out} exists and is not a folder")

        # model, optimiser (same seed on every rank; DDP also broadcasts rank 0's weights)
        random.seed(c.seed)
        np.random.seed(c.seed % 2**32)
        torch.manual_seed(c.seed)
        self.model = CRNN(conservative=c.conservative, hidden=c.hidden, kernel=c.kernel, equivariant=c.equivariant)
        self.history: list[dict] = []
        self.best = (math.inf, -1)  # (val loss, epoch)
        self.start = 0
        saved = None
        if c.resume:
            saved = load_checkpoint(last, map_location="cpu")
            check_resumable(saved, c, self.data_info, last)
            self.model.load_state_dict(saved["model_state"])
            self.history = list(saved.get("history", []))
            self.best = (float(saved.get("best_val_loss", math.inf)), int(saved.get("best_epoch", -1)))
            self.start = int(saved["epoch"]) + 1
        elif c.init_from:
            self.model.load_state_dict(_initial_weights(c))
        # the training data's boundary (surrogate.boundary: mirror padding on wall axes; no weights change, so a
        # periodic --init-from checkpoint starts from its own step on the box with walls)
        self.model.set_boundary(self.train_ds.boundary).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=c.lr)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)
        if saved is not None:
            self.optimizer.load_state_dict(saved["optimizer"])
            if saved.get("scaler"):
                self.scaler.load_state_dict(saved["scaler"])
            _set_rng_states(saved["rng"])
        net = _UnrolledModel(self.model)
        if self.dist.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            net = nn.parallel.DistributedDataParallel(net, device_ids=ids)
        self.net = net

        self.sampler = SubSequenceSampler(
            self.train_ds.indices,
            self.train_ds.n_frames,  # stored frames; the sampler applies the stride
            c.batch,
            c.min_len,
            self.max_len,
            seed=c.seed,
            augment=c.augment,
            symmetries=self.train_ds.symmetries,
            rank=self.dist.rank,
            world_size=self.dist.world,
            stride=c.stride,
        )
        self.loader = torch.utils.data.DataLoader(
            self.train_ds,
            batch_sampler=self.sampler,
            num_workers=c.workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=c.workers > 0,
        )

    # -- one epoch -------------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> tuple[float, int]:
        from tqdm import tqdm

        c = self.cfg
        self.model.train()
        self.sampler.set_epoch(epoch)
        total, count = 0.0, 0
        show = self.main and (c.progress if c.progress is not None else sys.stderr.isatty())
        bar = tqdm(self.loader, desc=f"epoch {epoch}", unit="batch", leave=False, dynamic_ncols=True, disable=not show)
        for i, batch in enumerate(bar):
            seq = batch.to(self.device, non_blocking=True)
            n, T = seq.shape[:2]
            L = teacher_frames(epoch, T, c.ramp)
            noise = self._noise_generator(epoch, i) if c.input_noise > 0 else None
            self.optimizer.zero_grad(set_to_none=True)
            value = self._forward_backward(seq, L, noise)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total += value * n
            count += n
            bar.set_postfix_str(f"loss {value:.3e}", refresh=False)
        bar.close()
        total, count = self.dist.sum([total, count], self.device)
        return total / count, int(count)

    def _forward_backward(self, seq: torch.Tensor, L: int, noise) -> float:
        """Rollout of the batch seq (N, T, 1, X, Y, Z) with teacher frames 1..L−1, the objective and
        its gradients (accumulated into .grad); returns the loss.

        With ``bptt`` K < T − 1 the T − 1 steps run in pieces of K: each piece's share of the loss
        (its steps' MSE / (T − 1)) is backpropagated at once and the state (φ input, h1, h2) passed
        on detached, so memory holds K steps' activations instead of T − 1. The loss is the
        same number; the gradient drops the paths that cross a cut (truncated backpropagation
        through time). Without ``bptt`` (or K ≥ T − 1) this is the plain full backpropagation.
        """
        c = self.cfg
        steps = seq.shape[1] - 1
        K = c.bptt if c.bptt else steps
        phi, hidden, total = seq[:, 0], None, 0.0
        starts = list(range(0, steps, K))
        for s in starts:
            n = min(K, steps - s)
            if 0 < s <= L - 1:
                phi = seq[:, s]  # a teacher frame is the input of step s
            teacher = seq[:, s + 1 : L] if L - 1 > s else None
            last = s == starts[-1]
            sync = contextlib.nullcontext() if last or self.dist.world == 1 else self.net.no_sync()
            with sync:
                with torch.autocast(self.device.type, dtype=self.amp or torch.bfloat16, enabled=self.amp is not None):
                    pred, hidden = self.net(phi, n, teacher, c.input_noise, noise, hidden)
                ref = torch.cat([seq[:, :1], seq[:, s + 1 : s + 1 + n]], dim=1)
                loss = objective(pred.float(), ref, c.conservative, c.mass_penalty) * (n / steps)
                self.scaler.scale(loss).backward()
            total += loss.item()
            if not last:
                phi = pred[:, -1].detach()
                hidden = tuple(h.detach() for h in hidden)
        return total

    def _noise_generator(self, epoch: int, batch: int) -> torch.Generator:
        """The input noise's generator of one batch: a pure function of (seed, epoch, batch, rank)."""
        seq = np.random.SeedSequence([self.cfg.seed, epoch, batch, self.dist.rank])
        return torch.Generator(device=self.device).manual_seed(int(seq.generate_state(1, np.uint64)[0] % 2**63))

    @torch.no_grad()
    def validate(self) -> float:
        """Mean over the val sequences of the MSE of a free run from frame 0 over all frames."""
        self.model.eval()
        total, count = 0.0, 0
        for positions in validation_batches(len(self.val_ds), self.cfg.batch, self.dist.rank, self.dist.world):
            seq = torch.stack([self.val_ds[k] for k in positions]).to(self.device)
            pred = self.model.rollout(seq[:, 0], seq.shape[1] - 1)
            err = (pred.float() - seq[:, 1:]).pow(2).mean(dim=(1, 2, 3, 4, 5))
            total += float(err.double().sum())
            count += len(positions)
        total, count = self.dist.sum([total, count], self.device)
        return total / count

    def replica_difference(self) -> float:
        """Largest |w − w_rank0| over all weights and ranks (0.0 without DDP)."""
        if self.dist.world == 1:
            return 0.0
        flat = torch.cat([p.detach().reshape(-1) for p in self.model.parameters()])
        ref = flat.clone()
        dist.broadcast(ref, 0)
        diff = (flat - ref).abs().max().reshape(1)
        dist.all_reduce(diff, op=dist.ReduceOp.MAX)
        return float(diff)

    # -- files --------------------------------------------------------------------------------------
    def save(self, epoch: int, row: dict, is_best: bool, replica_diff: float) -> None:
        meta = dict(
            epoch=epoch,
            optimizer=self.optimizer.state_dict(),
            scaler=self.scaler.state_dict(),
            rng=_rng_states(),
            train_config=self.cfg.to_dict(),
            dataset=self.data_info,
            boundary=self.data_info["boundary"],  # the training data's (x, y, z) boundary, "X,Y,Z"
            downscale=self.cfg.downscale,
            history=self.history,
            train_loss=row["train_loss"],
            val_loss=row["val_loss"],
            best_val_loss=self.best[0],
            best_epoch=self.best[1],
            world_size=self.dist.world,
            replica_max_diff=replica_diff,
            command=self.command,
            torch_version=str(torch.__version__),
            code_version=self.code_version,
        )
        if is_best:
            save_checkpoint(self.model, self.out / "best.pt", **meta)
        save_checkpoint(self.model, self.out / "last.pt", **meta)
        _write_csv(self.out / "log.csv", self.history)

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> dict:
        c = self.cfg
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            # half-written files of a killed run (the finished ones were renamed): ch_numba.files.tmp_path's names
            # of dead processes, and .NAME.pt.XXXX.tmp of the writer before it
            remove_stale_temps(self.out)
            for stale in self.out.glob(".*.pt.*.tmp"):
                stale.unlink(missing_ok=True)
        done = {"out": str(self.out), "last": str(self.out / "last.pt"), "best": str(self.out / "best.pt")}
        if self.start >= c.epochs:
            log.info("%s: already trained %d epochs (--epochs %d): nothing to do", self.out, self.start, c.epochs)
            return {**done, "history": self.history, "best_val_loss": self.best[0], "best_epoch": self.best[1]}
        writer = None
        if self.main and c.tensorboard:
            writer = _tensorboard(self.out / "tensorboard", purge_step=self.start if c.resume else None)
        log.info(
            "training %s%s CRNN (%d parameters) on %s: %d train / %d val sequences, grid %s -> %s%s, "
            "seq-len %d..%d%s, batch %d x %d process(es), %s%s; epochs %d..%d -> %s",
            "conservative" if c.conservative else "non-conservative",
            " cube-equivariant" if c.equivariant else "",
            self.model.param_count(),
            c.data,
            len(self.train_ds),
            len(self.val_ds),
            "x".join(map(str, self.train_ds.shape)),
            "x".join(map(str, self.train_ds.grid)),
            "" if self.model.boundary == ("periodic",) * 3 else f" (boundary {self.data_info['boundary']})",
            c.min_len,
            self.max_len,
            f" (one step = {c.stride} stored frames)" if c.stride > 1 else "",
            c.batch,
            self.dist.world,
            self.device,
            f", amp {self.amp}" if self.amp else "",
            self.start + 1,  # 1-based, as the epoch lines
            c.epochs,
            self.out,
        )
        try:
            for epoch in range(self.start, c.epochs):
                t0 = time.perf_counter()
                train_loss, n_seq = self.train_epoch(epoch)
                t_train = time.perf_counter() - t0
                if not math.isfinite(train_loss):
                    check_finite(c.data, "train")  # Inf/NaN in the data, not a divergence: say which frame
                    raise RuntimeError(
                        f"training diverged in epoch {epoch} (train loss {train_loss}); "
                        f"lower --lr or resume from {self.out / 'last.pt'}"
                    )
                val_loss = self.validate()
                if not math.isfinite(val_loss):
                    check_finite(c.data, "val")
                seconds = time.perf_counter() - t0
                row = {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "teacher_frames": teacher_frames(epoch, self.max_len, c.ramp),
                    "lr": self.optimizer.param_groups[0]["lr"],
                    "seconds": round(seconds, 3),
                }
                self.history.append(row)
                is_best = epoch >= c.best_from and val_loss < self.best[0]
                if is_best:
                    self.best = (val_loss, epoch)
                replica_diff = self.replica_difference()
                if self.main:
                    self.save(epoch, row, is_best, replica_diff)
                    if writer is not None:
                        writer.add_scalar("loss/train", train_loss, epoch)
                        writer.add_scalar("loss/val", val_loss, epoch)
                        writer.add_scalar("curriculum/teacher_frames", row["teacher_frames"], epoch)
                        writer.add_scalar("lr", row["lr"], epoch)
                        writer.add_scalar("throughput/sequences_per_s", n_seq / t_train, epoch)
                        writer.flush()
                sync = ""
                if self.dist.world > 1:
                    same = replica_diff == 0.0
                    sync = f", replicas {'identical' if same else 'DIFFER'} on {self.dist.world} ranks"
                log.info(
                    "epoch %d/%d: train %.4e  val %.4e%s  teacher %d  %.1f s (%.2f seq/s)%s",
                    epoch + 1,  # 1-based of the total: --epochs 5 logs epoch 1/5 .. 5/5 (files keep 0-based)
                    c.epochs,
                    train_loss,
                    val_loss,
                    " (best)" if is_best else "",
                    row["teacher_frames"],
                    seconds,
                    n_seq / t_train,
                    sync,
                )
                if replica_diff != 0.0:
                    log.warning("DDP replicas differ by %.3g after epoch %d", replica_diff, epoch)
        finally:
            if writer is not None:
                writer.close()
        log.info(  # numbered as the epoch lines (1-based); best.pt and metrics.csv record it 0-based
            "done: best val loss %.4e at epoch %d/%d -> %s",
            self.best[0],
            self.best[1] + 1,
            self.cfg.epochs,
            self.out / "best.pt",
        )
        return {**done, "history": self.history, "best_val_loss": self.best[0], "best_epoch": self.best[1]}

    def close(self) -> None:
        for ds in (getattr(self, "train_ds", None), getattr(self, "val_ds", None)):
            if ds is not None:
                ds.close()
        # DDP holds the process group; release it now, not at interpreter exit (see _Dist.shutdown)
        self.net = self.loader = None
        if getattr(self, "lock", None) is not None:
            self.lock.release()


def train(config: TrainConfig, command: str = "") -> dict:
    """Train (or resume) as described in the module docstring.

    Returns a dict with ``out``, ``last``, ``best`` (paths), ``history`` (the log rows: epoch,
    train_loss, val_loss, teacher_frames, lr, seconds), ``best_val_loss`` and ``best_epoch``.
    Raises ValueError (one line) for a missing/corrupt/too small data set or bad options,
    RuntimeError if the loss diverges.
    """
    where = _Dist()
    trainer = None
    ok = False
    try:
        trainer = _Trainer(config, where, command)
        result = trainer.run()
        ok = True
        return result
    finally:
        if trainer is not None:
            trainer.close()
            trainer = None
            gc.collect()  # modules with hooks sit in reference cycles: free DDP before the group goes
        where.shutdown(ok)
