"""HDF5 data sets of Cahn-Hilliard evolutions: layout, crash-safe generation, lazy reader.

One module per concept (each opens with its own docstring):

- :mod:`~ch_numba.dataset.layout`: the HDF5 layout (schema, storage options, root attributes, dimension
  scales) and its one writer of the empty layout (``create_layout``, ``set_sequence``);
- :mod:`~ch_numba.dataset.writer`: the sequence writer (``SequenceFile``, ``write_sequence_file``) and
  ``simulate``'s resumable runs;
- :mod:`~ch_numba.dataset.recipe`: what a resumed run or a shard must share with the run it continues;
- :mod:`~ch_numba.dataset.shards`: the parts folder, its locks (``PartsLock``) and ``merge``;
- :mod:`~ch_numba.dataset.generation`: ``DatasetConfig``, the batched driver, ``Progress`` and ``generate``;
- :mod:`~ch_numba.dataset.reader`: ``open_dataset`` (``Dataset``) and ``read_frame``.

The names of the modules are also names of this package (``from ch_numba.dataset import generate``).
"""

from __future__ import annotations

from .generation import (
    BURN_IN_LAWS,
    DEFAULT_BATCH,
    IC_MEAN_CLIP,
    PROGRESS_INTERVAL,
    DatasetConfig,
    Progress,
    default_batch,
    generate,
    parts_recipe,
)
from .layout import (
    ARRAY_DIMS,
    DIMS,
    FORMAT,
    FORMAT_VERSION,
    REQUIRED,
    SPLITS,
    STORAGES,
    create_layout,
    root_attrs,
    set_sequence,
    solver_attrs,
    steps_per_frame_dt,
    storage_options,
)
from .reader import Dataset, open_dataset, read_frame
from .recipe import _create_new as _create_new  # tests import it here
from .recipe import run_params
from .shards import MERGE_LOCK, PartsLock, merge, parse_shard, part_path, part_problem, parts_dir, shard_lock
from .writer import SequenceFile, prepare_resume_dir, resume_dir_of, run_sequence, write_sequence_file

__all__ = [
    "ARRAY_DIMS",
    "BURN_IN_LAWS",
    "DEFAULT_BATCH",
    "DIMS",
    "FORMAT",
    "FORMAT_VERSION",
    "IC_MEAN_CLIP",
    "MERGE_LOCK",
    "PROGRESS_INTERVAL",
    "REQUIRED",
    "SPLITS",
    "STORAGES",
    "Dataset",
    "DatasetConfig",
    "PartsLock",
    "Progress",
    "SequenceFile",
    "create_layout",
    "default_batch",
    "generate",
    "merge",
    "open_dataset",
    "parse_shard",
    "part_path",
    "part_problem",
    "parts_dir",
    "parts_recipe",
    "prepare_resume_dir",
    "read_frame",
    "resume_dir_of",
    "root_attrs",
    "run_params",
    "run_sequence",
    "set_sequence",
    "shard_lock",
    "solver_attrs",
    "steps_per_frame_dt",
    "storage_options",
    "write_sequence_file",
]
