#!/bin/bash
# Generate a large ch3d data set as a Slurm job array: one shard per array task, then one merge job.
#
#   sbatch --array=0-15 examples/slurm_generate.sh        # 16 shards (adjust NSHARDS below to match)
#   sbatch --dependency=afterok:<array job id> --wrap "python -m ch_numba merge $OUT"
#
# Every shard writes finished sequences atomically into $OUT.parts/ on a shared file system and
# holds the lock $OUT.parts/shard-K-of-N.lock while it runs. A shard stopped by its time limit or
# scancel (SIGTERM) removes its lock: resubmit it with the same command and it continues where it
# stopped. After a node failure (or SIGKILL) the lock stays behind, and the resubmitted shard, on
# another node, stops with one line naming it (pid and host): once the old job is gone (squeue/sacct),
# delete that lock file and resubmit. The merged file is identical to a single-process run.
#SBATCH --job-name=ch3d-gen
#SBATCH --time=12:00:00
#SBATCH --cpus-per-task=8
#SBATCH --mem=8G
# On GPU nodes add:  #SBATCH --gres=gpu:1   (the auto backend then uses the CUDA kernels)
set -euo pipefail

OUT=${OUT:-$SCRATCH/ch3d/paper64.h5}
NSHARDS=${NSHARDS:-16}
export NUMBA_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}

mkdir -p "$(dirname "$OUT")"
# The paper's data set: 1850 sequences of 64³, 50 frames x 400 steps, eps = 3.
python -m ch_numba generate "$OUT" \
    --sequences 1850 --frames 50 --steps-per-frame 400 --size 64 \
    --burn-in-frames 10 --val-fraction 0.3 --seed 2024 --backend auto \
    --shard "${SLURM_ARRAY_TASK_ID}/${NSHARDS}"
