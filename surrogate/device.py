"""Where the network runs: the torch device, the mixed-precision dtype, the process's place in a torchrun job.

Shared by training (:mod:`surrogate.train`) and inference (:mod:`surrogate.runner`), so that running a
checkpoint does not import the trainer.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["resolve_device", "amp_dtype"]


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """Device name → torch.device: "auto" → cuda (this process's GPU) if available, else cpu."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: no usable CUDA device (torch.cuda.is_available() is False)")
        if name == "cuda":
            name = f"cuda:{local_rank % torch.cuda.device_count()}"
        if int(name[5:]) >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    elif name != "cpu":
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}")
    return torch.device(name)


def amp_dtype(amp: str, device: torch.device):
    """The autocast dtype of the training forward pass, or None (float32).

    CUDA: "auto" is bf16 where supported, else fp16. CPU: only "bf16" turns it on ("auto" stays
    float32 there, so that a recipe's numbers do not depend on the CPU); fp16 needs CUDA.
    """
    if device.type != "cuda":
        if amp == "fp16":
            raise ValueError("--amp fp16 needs a CUDA device (on the CPU use --amp bf16)")
        return torch.bfloat16 if amp == "bf16" else None
    if amp == "off":
        return None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if amp == "bf16" else torch.float16


class _Dist:
    """This process's place in a torchrun job (world size 1 without torchrun)."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.active = False

    def init(self, device: torch.device) -> None:
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            self.active = True
        if self.world > 1:
            self.rank, self.world = dist.get_rank(), dist.get_world_size()

    def sum(self, values: list[float], device) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=device)
        if self.world > 1:
            dist.all_reduce(t)
        return t.tolist()

    def shutdown(self, ok: bool = True) -> None:
        """Tear down the process group we created, after the DDP wrapper is freed: all ranks meet
        at a barrier first. (A process group still referenced at interpreter exit can end gloo
        with "terminate called without an active exception".) After a failure the group is left
        alone, as destroying it while other ranks wait in a collective deadlocks."""
        if self.active and ok and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
        self.active = False
