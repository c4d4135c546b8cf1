#!/bin/bash
# A Slurm job array restoring an archive with 8 workers (docs/scale.md), in the container built
# from examples/cluster/Containerfile (as an Apptainer image).
#
#   mkdir -p logs /shared/archive/reports && sbatch examples/cluster/slurm.sh
#   facerestore report --summary /shared/archive/reports/*.jsonl   # when the array has finished
#   sbatch --array=3 examples/cluster/slurm.sh                      # rerun one worker: it resumes
#
# `--shard auto` reads SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT (IDs need not start at 0:
# SLURM_ARRAY_TASK_MIN is subtracted). Keep the array's range when rerunning single tasks: the
# count is taken from the array the task belongs to, so `--array=3` alone would be task 3 of 1;
# pass the shard explicitly instead: SHARD=3/8 sbatch --array=3 …
#SBATCH --job-name=facerestore
#SBATCH --array=0-7
#SBATCH --cpus-per-task=2
#SBATCH --mem=3G
#SBATCH --time=24:00:00
#SBATCH --output=logs/facerestore-%A_%a.out
set -euo pipefail

ARCHIVE=/shared/archive          # the scans, list.txt, restored/, reports/ (shared by every node)
MODELS=/shared/facerestore       # holds models/GFPGANv1.4.pth, detection_Resnet50_Final.pth, parsing_parsenet.pth
IMAGE=/shared/images/facerestore.sif

# Apptainer passes the SLURM_* variables into the container.
exec apptainer exec --bind "$ARCHIVE:/archive" --bind "$MODELS:/models:ro" --env FACERESTORE_HOME=/models "$IMAGE" \
  facerestore restore \
    --list /archive/list.txt \
    -o /archive/restored \
    --recursive --skip-existing \
    --shard "${SHARD:-auto}" \
    --report "/archive/reports/worker-${SLURM_ARRAY_TASK_ID}.jsonl" \
    -v 1.4 --threads "${SLURM_CPUS_PER_TASK:-2}"
