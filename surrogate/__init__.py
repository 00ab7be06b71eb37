"""surrogate: conservative ConvGRU3D surrogate (CRNN) of 3D Cahn-Hilliard flow.

    import surrogate
    model = surrogate.CRNN(conservative=True, hidden=10, kernel=3)   # 29,183 parameters
    frames = model.rollout(phi0, steps=50)                            # (N, 50, 1, X, Y, Z)
    surrogate.save_checkpoint(model, "model.pt", epoch=3)
    ckpt = surrogate.load_checkpoint("model.pt")                      # ckpt["model"], ckpt["epoch"], ...

The torch-based names are imported on first use, so ``import surrogate.metrics`` (numpy only)
works where torch is not installed, e.g. next to the ONNX runtime. Keep this file free of
top-level torch imports.
"""

import importlib

__all__ = ["CRNN", "ConvGRU3DCell", "save_checkpoint", "load_checkpoint"]

_LAZY = {
    "CRNN": ".model",
    "ConvGRU3DCell": ".cells",
    "save_checkpoint": ".checkpoint",
    "load_checkpoint": ".checkpoint",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'surrogate' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
