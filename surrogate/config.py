"""Training configuration: a frozen dataclass with checks, importable without PyTorch.

``python -m surrogate`` builds its argument parser from these defaults, so the parser (and the
``evaluate`` command on an ONNX model) never imports torch. :mod:`surrogate.train` re-exports
both names.
"""

from __future__ import annotations

import dataclasses
import math

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

    data: str
    out: str
    epochs: int = 100
    batch: int = 4
    lr: float = 1e-4
    ramp: int = 25
    conservative: bool = True
    hidden: int = 10
    kernel: int = 3
    equivariant: bool = False
    downscale: int = 2
    min_len: int = 2
    max_len: int | None = None
    augment: bool = True
    mass_penalty: float = 1e-3
    input_noise: float = 0.0
    device: str = "auto"
    amp: str = "auto"
    bptt: int | None = None
    seed: int = 0
    workers: int = 0
    threads: int = 0
    resume: bool = False
    best_from: int = 0
    init_from: str | None = None
    tensorboard: bool = True
    progress: bool | None = None

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
        need(self.seed >= 0, f"--seed must be >= 0, got {self.seed}")
        need(self.workers >= 0, f"--workers must be >= 0, got {self.workers}")
        need(self.threads >= 0, f"--threads must be >= 0, got {self.threads}")
        need(self.best_from >= 0, f"--best-from must be >= 0, got {self.best_from}")
        if self.init_from is not None:
            object.__setattr__(self, "init_from", str(self.init_from))
        need(
            not (self.resume and self.init_from),
            "--resume and --init-from exclude each other: a resumed run continues its own weights",
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
