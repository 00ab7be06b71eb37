"""HDF5 data sets of Cahn-Hilliard evolutions: layout, crash-safe generation, lazy reader.

One module per concept (each opens with its own docstring):

- ``ch_numba.dataset.layout``: the HDF5 layout (schema, storage options, root attributes, dimension
  scales) and its one writer of the empty layout (``create_layout``, ``set_sequence``);
- ``ch_numba.dataset.writer``: the sequence writer (``SequenceFile``, ``write_sequence_file``) and
  ``simulate``'s resumable runs;
- ``ch_numba.dataset.recipe``: what a resumed run or a shard must share with the run it continues;
- ``ch_numba.dataset.shards``: the parts folder, its locks (``PartsLock``) and ``merge``;
- ``ch_numba.dataset.generation``: ``DatasetConfig``, the batched driver, ``Progress`` and ``generate``;
- ``ch_numba.dataset.pipeline``: ``generate``'s per-frame pipeline (snapshots of the batch, the writer
  thread that checks, compresses and writes a frame while the solver computes the next);
- ``ch_numba.dataset.reader``: ``open_dataset`` (``Dataset``) and ``read_frame``.

The names of the modules are also names of this package (``from ch_numba.dataset import generate``),
imported on first use (PEP 562): reading one module (``ch_numba.dataset.reader``, ``.layout``) does not
load the generator (the solver, numba) or the others.
"""

from __future__ import annotations

import importlib

#: public name -> the module that defines it (imported on first use, PEP 562)
_HOMES = {
    "BURN_IN_LAWS": "generation",
    "DEFAULT_BATCH": "generation",
    "DatasetConfig": "generation",
    "IC_MEAN_CLIP": "generation",
    "PROGRESS_INTERVAL": "generation",
    "Progress": "generation",
    "default_batch": "generation",
    "generate": "generation",
    "parts_recipe": "generation",
    "ARRAY_DIMS": "layout",
    "DIMS": "layout",
    "FORMAT": "layout",
    "FORMAT_VERSION": "layout",
    "PERIODIC_FORMAT_VERSION": "layout",
    "REQUIRED": "layout",
    "SPLITS": "layout",
    "STORAGES": "layout",
    "create_layout": "layout",
    "root_attrs": "layout",
    "set_sequence": "layout",
    "solver_attrs": "layout",
    "steps_per_frame_dt": "layout",
    "storage_options": "layout",
    "Dataset": "reader",
    "open_dataset": "reader",
    "read_frame": "reader",
    "_create_new": "recipe",
    "run_params": "recipe",
    "MERGE_LOCK": "shards",
    "PartsLock": "shards",
    "merge": "shards",
    "parse_shard": "shards",
    "part_path": "shards",
    "part_problem": "shards",
    "parts_dir": "shards",
    "shard_lock": "shards",
    "SequenceFile": "writer",
    "prepare_resume_dir": "writer",
    "resume_dir_of": "writer",
    "run_sequence": "writer",
    "write_sequence_file": "writer",
}


#: every public name of the package (the keys of :data:`_HOMES` but the private ones)
__all__ = sorted(name for name in _HOMES if not name.startswith("_"))


def __getattr__(name):
    if name in _HOMES:
        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module 'ch_numba.dataset' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
