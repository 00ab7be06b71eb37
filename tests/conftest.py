"""Test setup: CUDA kernels run in Numba's simulator unless a real GPU is present.

NUMBA_ENABLE_CUDASIM must be set before numba is first imported, hence here.
Set CH3D_REAL_CUDA=0 to force the simulator on a GPU machine.
"""

import os
import shutil

if os.environ.get("CH3D_REAL_CUDA", "1" if shutil.which("nvidia-smi") else "0") != "1":
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
