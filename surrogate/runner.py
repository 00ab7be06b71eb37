"""A CRNN checkpoint behind the interface of :class:`export.runtime.Rollout`: numpy in, numpy out.

``TorchRunner(path, device="auto")`` loads a checkpoint (:func:`surrogate.load_checkpoint`) and
offers what the rollout writer (:mod:`export.rollout`) and the evaluation (:mod:`surrogate.evaluate`)
use of the ONNX runtime::

    metadata        the "ch3d" metadata an export of this checkpoint would carry, less the exporter's
                    section (the model card, :func:`surrogate.card.build_card`: physics, downscale,
                    train grid, ...; ``boundaries`` "periodic,neumann": it pads by any boundary), plus a
                    "runner" section
    factor, kernel, time_per_step, path, backend ("torch-cpu", "torch-cuda"), device
    boundary        the box's (x, y, z) boundary names (``boundary=``; periodic by default)
    downscale(field) / upscale(pred)        every f-th voxel (block means along wall axes) / each voxel
                                            repeated f³ times
    step(phi) ; rollout(phi0, steps, every=1, reset=True) -> generator of frames ; reset()

Shapes in and out are (X, Y, Z) or (N, 1, X, Y, Z) at the network's resolution, float32. The hidden
states h1, h2 (N, H, X, Y, Z) stay on the device between steps and start at zero, and each step
is one :meth:`surrogate.CRNN.step` under ``torch.inference_mode``: ``list(r.rollout(phi0, n))`` is
:meth:`surrogate.CRNN.rollout` of the same model, frame for frame, on the same device and thread
count.

(``TorchRollout``, the class's name before issue 23, is kept as an alias: the stepping object is a
*runner*; a *rollout* is the loop it runs.)
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from ch_numba.params import parse_boundary
from export.runtime.runner_base import RunnerBase, check_threads

from .card import build_card
from .checkpoint import load_checkpoint
from .device import resolve_device

log = logging.getLogger(__name__)

__all__ = ["TorchRunner", "TorchRollout"]


class TorchRunner(RunnerBase):
    """A CRNN checkpoint rolled out with PyTorch, with the interface of ``export.runtime.Rollout``.

    Parameters
    ----------
    path : str or Path
        Checkpoint (.pt) written by ``python -m surrogate train`` or :func:`surrogate.save_checkpoint`.
    device : "auto" (cuda if available) | "cpu" | "cuda" | "cuda:N"
    threads : int, optional
        ``torch.set_num_threads`` for this process (default: torch's choice).
    boundary : str or tuple, optional
        The box's boundary, as ``export.runtime.Rollout``'s: "periodic" (default), "neumann", "X,Y,Z" or
        three names. The model pads wall axes with the half-sample mirror (:meth:`surrogate.CRNN.set_boundary`;
        every checkpoint can) and :meth:`downscale` takes block means along them.

    Raises ValueError (one line) for a missing or foreign checkpoint, an unusable device or an unknown boundary.
    """

    #: a PyTorch model pads by any boundary (export.runtime.Rollout: only a graph with the ``walls`` input)
    supports_walls = True

    def __init__(self, path, device: str = "auto", threads: int | None = None, *, boundary=None):
        self.path = Path(path)
        self.boundary = parse_boundary("periodic" if boundary is None else boundary)
        check_threads(threads)
        if threads is not None:
            torch.set_num_threads(threads)
        self.torch_device = resolve_device(device)
        self.device = self.torch_device.type
        ckpt = load_checkpoint(self.path, map_location="cpu")
        self.model = ckpt["model"].float().set_boundary(self.boundary).to(self.torch_device).eval()
        meta = build_card(ckpt)  # no "exported" section: the weights run in PyTorch
        meta["boundaries"] = "periodic,neumann"  # what it can step, as an export with the walls input says
        meta["runner"] = {
            "torch": torch.__version__,
            "device": str(self.torch_device),
            "checkpoint": self.path.name,
            "epoch": ckpt.get("epoch"),
        }
        self.metadata = meta
        self.hidden_channels = int(self.model.hidden)
        self.dtype = np.dtype(np.float32)
        self._h = None  # (h1, h2) of the running state, None after reset
        self._shape = None
        self.steps_done = 0

    # -- description -----------------------------------------------------------------------
    @property
    def backend(self) -> str:
        """What computes the steps, as stored in rollout files: "torch-cpu" or "torch-cuda"."""
        return f"torch-{self.device}"

    @property
    def providers(self) -> list:
        """The device, in the place of onnxruntime's provider list."""
        return [str(self.torch_device)]

    def _as_batch(self, phi, name: str = "phi") -> tuple[torch.Tensor, bool]:
        a, squeeze = self._as_array(phi, name)
        return torch.from_numpy(a).to(self.torch_device), squeeze

    # -- state -----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the hidden states: the next step or rollout starts from zero."""
        self._h = self._shape = None
        self.steps_done = 0

    def _start(self, x: torch.Tensor) -> None:
        self._h = self.model.init_hidden(x)
        self._shape = tuple(x.shape)
        self.steps_done = 0

    def _advance(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            phi, h1, h2 = self.model.step(x, *self._h)
        self._h = (h1, h2)
        self.steps_done += 1
        return phi

    @staticmethod
    def _fetch(phi: torch.Tensor, squeeze: bool) -> np.ndarray:
        out = phi.detach().to("cpu").numpy().copy()
        return out[0, 0] if squeeze else out

    # -- the API ---------------------------------------------------------------------------
    def step(self, phi) -> np.ndarray:
        """One network step from φ (one saved frame later); hidden states carried from the last call.

        phi : array (X, Y, Z) or (N, 1, X, Y, Z), network resolution. Returns φ one step later,
        same layout, float32.
        """
        x, squeeze = self._as_batch(phi)
        if self._shape is None:
            self._start(x)
        elif tuple(x.shape) != self._shape:
            raise ValueError(
                f"phi has shape {tuple(x.shape)} but the running state has {self._shape}; call reset() "
                f"to start a rollout on another grid or batch"
            )
        return self._fetch(self._advance(x), squeeze)

    def rollout(self, phi0, steps: int, every: int = 1, reset: bool = True):
        """Free-running rollout of ``steps`` network steps from φ0; a generator of frames.

        phi0 : array (X, Y, Z) or (N, 1, X, Y, Z), network resolution; steps ≥ 0; every ≥ 1;
        steps a multiple of every (ValueError otherwise).
        reset : True (default): hidden states start from zero; False: continue the current ones.
        Yields φ after k·every steps, k = 1 .. steps // every (φ0 itself is not yielded), in
        phi0's layout. Arguments are checked at call time.
        """
        self._check_counts(steps, every)
        x, squeeze = self._as_batch(phi0, "phi0")
        if reset or self._shape is None:
            self._start(x)
        elif tuple(x.shape) != self._shape:
            raise ValueError(
                f"phi0 has shape {tuple(x.shape)} but the running state has {self._shape}; use "
                f"reset=True to start a rollout on another grid or batch"
            )
        return self._frames(x, int(steps), int(every), squeeze)

    def _frames(self, x: torch.Tensor, steps: int, every: int, squeeze: bool):
        phi = x
        for n in range(1, steps + 1):
            phi = self._advance(phi)
            if n % every == 0:
                yield self._fetch(phi, squeeze)

    def __repr__(self) -> str:
        return self._repr(f"device={self.torch_device}")


TorchRollout = TorchRunner  # the name before issue 23 (deprecated alias)
