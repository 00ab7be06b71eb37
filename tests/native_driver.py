"""Drive libch3d_embed.so through ctypes in a process of its own (no onnxruntime Python module loaded
beside the C library's onnxruntime): ``python tests/native_driver.py LIB COMMAND JSON`` prints one JSON
object. Used by tests/test_native.py; ctypes releases the GIL in foreign calls, so threads run concurrently.
"""

from __future__ import annotations

import ctypes as C
import json
import sys
import threading

import numpy as np

I64 = C.c_int64
FP = np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS")


def load(path):
    lib = C.CDLL(path)
    lib.ch3d_open.argtypes = [C.c_char_p, C.c_int, C.c_char_p, C.POINTER(C.c_void_p)]
    lib.ch3d_close.argtypes = [C.c_void_p]
    lib.ch3d_last_error.restype = C.c_char_p
    lib.ch3d_reset.argtypes = [C.c_void_p]
    lib.ch3d_step.argtypes = [C.c_void_p, FP, I64, I64, I64, I64]
    lib.ch3d_rollout.argtypes = [C.c_void_p, FP, I64, I64, I64, I64, I64]
    lib.ch3d_step_halo.argtypes = [C.c_void_p, FP, FP, FP, I64, I64, I64, I64, I64, FP, FP, FP]
    for name in ("ch3d_hidden", "ch3d_downscale", "ch3d_kernel", "ch3d_min_grid", "ch3d_halo", "ch3d_steps_done"):
        getattr(lib, name).argtypes = [C.c_void_p]
        getattr(lib, name).restype = I64
    lib.ch3d_conservative.argtypes = [C.c_void_p]
    lib.ch3d_time_per_step.argtypes = [C.c_void_p]
    lib.ch3d_time_per_step.restype = C.c_double
    lib.ch3d_metadata_number.argtypes = [C.c_void_p, C.c_char_p, C.POINTER(C.c_double)]
    lib.ch3d_device.argtypes = [C.c_void_p]
    lib.ch3d_device.restype = C.c_char_p
    return lib


def open_model(lib, path, threads=1, provider="cpu"):
    h = C.c_void_p()
    code = lib.ch3d_open(path.encode(), threads, provider.encode() if provider is not None else None, C.byref(h))
    return code, h, lib.ch3d_last_error().decode()


def main():
    lib = load(sys.argv[1])
    cmd, args = sys.argv[2], json.loads(sys.argv[3])
    out = {}
    if cmd == "open":  # the result of ch3d_open, and the metadata when it succeeds
        code, h, err = open_model(lib, args["model"], 1, args.get("provider", "cpu"))
        out = {"code": code, "error": err}
        if code == 0:
            v = C.c_double()
            meta = {}
            for key in ("epsilon", "dt", "steps_per_frame", "nothing"):
                meta[key] = v.value if lib.ch3d_metadata_number(h, key.encode(), C.byref(v)) == 0 else None
            out.update(
                hidden=lib.ch3d_hidden(h),
                downscale=lib.ch3d_downscale(h),
                kernel=lib.ch3d_kernel(h),
                min_grid=lib.ch3d_min_grid(h),
                halo=lib.ch3d_halo(h),
                conservative=lib.ch3d_conservative(h),
                time_per_step=lib.ch3d_time_per_step(h),
                device=lib.ch3d_device(h).decode(),
                meta=meta,
            )
            lib.ch3d_close(h)
    elif cmd == "steps":  # a sequence of ch3d_step calls on fields saved as .npy; code and text of each
        code, h, err = open_model(lib, args["model"])
        assert code == 0, err
        out["results"] = []
        for item in args["calls"]:
            if item == "reset":
                out["results"].append([lib.ch3d_reset(h), ""])
                continue
            a = np.ascontiguousarray(np.load(item), np.float32)
            n, nx, ny, nz = (1, *a.shape) if a.ndim == 3 else (a.shape[0], *a.shape[2:])
            code = lib.ch3d_step(h, a, n, nx, ny, nz)
            out["results"].append([code, lib.ch3d_last_error().decode() if code else ""])
            if code == 0 and "out" in args:
                np.save(f"{args['out']}{len(out['results']) - 1}.npy", a)
        lib.ch3d_close(h)
    elif cmd == "halo":  # ch3d_step_halo on ghosted blocks saved as .npz (phi, h1, h2, halo)
        code, h, err = open_model(lib, args["model"])
        assert code == 0, err
        z = np.load(args["blocks"])
        phi, h1, h2, g = z["phi"], z["h1"], z["h2"], int(z["halo"])
        n, hc, *ext = h1.shape
        inner = [e - 2 * g for e in ext]
        outs = [np.empty((n, c, *inner), np.float32) for c in (1, hc, hc)]
        code = lib.ch3d_step_halo(h, phi, h1, h2, n, *inner, g, *outs)
        out = {"code": code, "error": lib.ch3d_last_error().decode() if code else ""}
        if code == 0:
            np.savez(args["out"], phi=outs[0], h1=outs[1], h2=outs[2])
        lib.ch3d_close(h)
    elif cmd == "threads":  # rollouts of separate handles, one after another and concurrently
        fields = [np.ascontiguousarray(np.load(p), np.float32) for p in args["fields"]]
        steps = args["steps"]

        def run(i, results):
            code, h, err = open_model(lib, args["models"][i])
            a = fields[i].copy()
            code = code or lib.ch3d_rollout(h, a, 1, *a.shape, steps)
            results[i] = (code, a)
            lib.ch3d_close(h)

        seq, par = [None] * len(fields), [None] * len(fields)
        for i in range(len(fields)):
            run(i, seq)
        threads = [threading.Thread(target=run, args=(i, par)) for i in range(len(fields))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out = {
            "codes": [c for c, _ in seq + par],
            "max_diff": [float(np.abs(s[1] - p[1]).max()) for s, p in zip(seq, par)],
        }
        for i, (_, a) in enumerate(par):
            np.save(args["out"] + f"{i}.npy", a)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
