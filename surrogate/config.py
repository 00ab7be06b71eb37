"""Training configuration: a frozen dataclass with checks, importable without PyTorch.

Each field that is a command-line option of ``python -m surrogate train`` declares it
(:func:`ch_numba.options.option`: help, flag, action), so the parser is built from these fields
and never imports torch (nor does the ``evaluate`` command on an ONNX model). :mod:`surrogate.train` re-exports
both names.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from ch_numba.options import check_seed, option

__all__ = ["TrainConfig", "AMP_CHOICES"]

AMP_CHOICES = ("auto", "off", "bf16", "fp16")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (saved as ``train_config`` in every checkpoint).

    data, out : data set (.h5) and run folder.
    epochs : total number of epochs (a resumed run continues up to it).
    batch : sequences per batch and process.
    lr : Adam learning rate.
    ramp : curriculum length R in epochs (0: no teacher forcing).
    conservative, hidden, kernel, equivariant : the CRNN architecture (equivariant: kernels tied to
        the 48 cube symmetries, :mod:`surrogate.equivariant`).
    downscale : nearest-sampling factor from the stored grid to the network's grid.
    stride : one network step = ``stride`` stored frames: the model sees frames a, a + k, a + 2k, ...
        of the data set (unchanged; k = stride); the sequence lengths count network frames.
    min_len, max_len : range of the training sub-sequence length in frames (max_len None: all
        stored frames); one length is drawn per batch.
    augment : draw the 48 cube symmetries and φ → 1 − φ.
    mass_penalty : λ of the mass-change penalty (non-conservative model only).
    input_noise : σ of the zero-mean Gaussian noise added to every network input in training
        (:meth:`surrogate.CRNN.rollout`; 0: none). Validation never adds noise.
    device : "auto" (cuda if available), "cpu", "cuda" or "cuda:N".
    amp : mixed precision: "auto" (CUDA: bf16 where supported, else fp16; CPU: off), "off", "bf16"
        (CUDA or CPU), "fp16" (CUDA).
    bptt : truncated backpropagation through time in pieces of this many steps (None: the whole
        sub-sequence); bounds the training memory for long sequences.
    seed : seeds the initial weights and the sampling.
    workers : DataLoader worker processes. threads : torch CPU threads (0: torch's default).
    resume : continue RUN_DIR/last.pt. best_from : first epoch that may become best.pt.
    init_from : start a new run from the weights of this checkpoint (fine-tuning, e.g. on longer
        sequences); optimiser, epochs and history start afresh. Not with ``resume``. An
        unconstrained checkpoint into an equivariant run is projected onto the symmetric kernels
        (:meth:`surrogate.CRNN.to_equivariant`), an equivariant one into a plain run materialised.
    tensorboard : also write TensorBoard scalars. progress : tqdm bar (None: on a terminal only).
    """

    data: str = option(positional=True, type=Path, help="ch3d data set (.h5) from `python -m ch_numba generate`")
    out: str = option(type=Path, required=True, help="run folder: last.pt, best.pt, log.csv, tensorboard/")
    epochs: int = option(100, "total epochs (default %(default)s)")
    batch: int = option(4, "sequences per batch and process (default %(default)s)")
    lr: float = option(1e-4, "Adam learning rate (default %(default)s)")
    ramp: int = option(25, "curriculum epochs R of teacher forcing (default %(default)s; 0: none)")
    conservative: bool = option(
        True, "flux head + divergence (mass conserved; default) or the sigmoid ablation", action="bool"
    )
    hidden: int = option(10, "hidden channels (default %(default)s)")
    kernel: int = option(3, "convolution kernel size (default %(default)s)")
    equivariant: bool = option(
        False,
        "kernels tied to the 48 cube rotations/reflections: the model commutes with them exactly "
        "(7,010 parameters); with --init-from an unconstrained checkpoint is projected (default: off)",
        action="bool",
    )
    downscale: int = option(2, "nearest downsampling factor of the stored grid (default %(default)s: 64^3 -> 32^3)")
    stride: int = option(
        1,
        "one network step = K stored frames: the model is trained on frames a, a+K, a+2K, ... of the "
        "unchanged data set, and its time per step is K frames (default %(default)s); --seq-len counts "
        "network frames",
        metavar="K",
    )
    min_len: int = 2  # --seq-len (surrogate.cli)
    max_len: int | None = None  # --seq-len
    augment: bool = option(True, "no cube symmetries / phase swap", action="store_false")
    mass_penalty: float = option(
        1e-3, "weight of the mass-change penalty, non-conservative model only (default %(default)s)"
    )
    input_noise: float = option(
        0.0,
        "σ of zero-mean Gaussian noise added to every network input in training, so that the "
        "model learns to correct its own errors in long rollouts (default %(default)s: none)",
        metavar="SIGMA",
    )
    device: str = option("auto", "auto (cuda if available), cpu, cuda, cuda:N (default %(default)s)")
    amp: str = option(
        "auto",
        "mixed precision of the training forward pass (default %(default)s: bf16 on CUDA where "
        "supported, float32 on the CPU; --amp bf16 on the CPU trains ~1.4x faster)",
        choices=AMP_CHOICES,
    )
    bptt: int | None = option(
        None,
        "backpropagate long rollouts in pieces of K steps (truncated; default: the whole "
        "sub-sequence). Memory grows with K: per sequence and step at a 32^3 network grid ~60 MB "
        "(paper model), ~90 MB (equivariant), ~45 MB (equivariant, --amp bf16)",
        metavar="K",
    )
    seed: int = option(0, "seed of the weights and the sampling (default %(default)s)")
    workers: int = option(0, "data-loader processes (default %(default)s)")
    threads: int = 0  # --threads (surrogate.cli: its default None is torch's choice, 0 here)
    resume: bool = option(False, "continue OUT/last.pt up to --epochs", action="store_true")
    best_from: int = option(0, "first epoch that may become best.pt (default %(default)s)")
    init_from: str | None = option(
        None, "start from the weights of this checkpoint (fine-tuning; fresh optimiser and epochs)", metavar="CKPT"
    )
    tensorboard: bool = option(True, "CSV log only", action="store_false")
    progress: bool | None = option(None, "tqdm progress bar (default: on a terminal)", action="bool")

    def __post_init__(self):
        object.__setattr__(self, "data", str(self.data))
        object.__setattr__(self, "out", str(self.out))

        def need(cond, msg):
            if not cond:
                raise ValueError(msg)

        need(self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}")
        need(self.batch >= 1, f"--batch must be >= 1, got {self.batch}")
        need(math.isfinite(self.lr) and self.lr > 0, f"--lr must be a positive number, got {self.lr}")
        need(self.ramp >= 0, f"--ramp must be >= 0, got {self.ramp}")
        need(self.hidden >= 1, f"--hidden must be >= 1, got {self.hidden}")
        need(self.kernel >= 1 and self.kernel % 2 == 1, f"--kernel must be a positive odd integer, got {self.kernel}")
        need(
            not (self.equivariant and self.conservative and self.kernel < 3),
            "--equivariant needs --kernel >= 3 with the conservative flux head (a 1x1x1 flux conv has no "
            "equivariant taps)",
        )
        need(self.downscale >= 1, f"--downscale must be >= 1, got {self.downscale}")
        need(
            not isinstance(self.stride, bool) and isinstance(self.stride, int) and self.stride >= 1,
            f"--stride must be an integer >= 1, got {self.stride!r}",
        )
        need(self.min_len >= 2, f"--seq-len: sub-sequences need at least 2 frames (one step), got {self.min_len}")
        need(
            self.max_len is None or self.max_len >= self.min_len,
            f"--seq-len: maximum {self.max_len} is below the minimum {self.min_len}",
        )
        need(
            math.isfinite(self.mass_penalty) and self.mass_penalty >= 0,
            f"--mass-penalty must be >= 0, got {self.mass_penalty}",
        )
        need(
            math.isfinite(self.input_noise) and self.input_noise >= 0,
            f"--input-noise must be >= 0, got {self.input_noise}",
        )
        need(
            self.device in ("auto", "cpu", "cuda") or (self.device.startswith("cuda:") and self.device[5:].isdigit()),
            f"--device must be auto, cpu, cuda or cuda:N, got {self.device!r}",
        )
        need(self.amp in AMP_CHOICES, f"--amp must be one of {', '.join(AMP_CHOICES)}, got {self.amp!r}")
        need(self.bptt is None or self.bptt >= 1, f"--bptt must be >= 1, got {self.bptt}")
        check_seed(self.seed)
        need(self.workers >= 0, f"--workers must be >= 0, got {self.workers}")
        need(self.threads >= 0, f"--threads must be >= 0, got {self.threads}")
        need(self.best_from >= 0, f"--best-from must be >= 0, got {self.best_from}")
        need(
            self.best_from < self.epochs,
            f"--best-from {self.best_from} must be below --epochs {self.epochs} (epochs are numbered "
            f"0..{self.epochs - 1}): no epoch could become best.pt",
        )
        if self.init_from is not None:
            object.__setattr__(self, "init_from", str(self.init_from))
        need(
            not (self.resume and self.init_from),
            "--resume and --init-from exclude each other: a resumed run continues its own weights",
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
