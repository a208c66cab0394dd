#!/usr/bin/env bash
# Submit a sharded arclight study to Slurm: an array of NSHARDS shard tasks, then the summary job that
# runs once every task succeeded. Prints the two job ids.
#
#   STUDY_DIR=/scratch/$USER/gl-study MODEL=infer/models/gigalens2022.toml NSYS=1000 NSHARDS=50 \
#     examples/slurm/submit.sh [extra sbatch options for the array, e.g. --cpus-per-task=8 --partition=cpu]
#
# Resubmitting the same command after a failure or a time-out resumes every shard. With PRIORS_FROM="<train-vae
# sweep or checkpoint folder> ..." (space-separated) it runs a prior comparison instead (every prior's study,
# sharded) and the last job merges it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${STUDY_DIR:?set STUDY_DIR}" "${MODEL:?set MODEL}" "${NSYS:?set NSYS}" "${NSHARDS:?set NSHARDS}"
mkdir -p "$STUDY_DIR/logs"
# the jobs start in the submission directory; absolute paths keep working if that changes
STUDY_DIR="$(cd "$STUDY_DIR" && pwd)"
MODEL="$(cd "$(dirname "$MODEL")" && pwd)/$(basename "$MODEL")"
INFER="${INFER:-infer}"
case "$INFER" in */*) INFER="$(cd "$(dirname "$INFER")" && pwd)/$(basename "$INFER")" ;; esac
PRIORS_FROM="${PRIORS_FROM:-}"
if [ -n "$PRIORS_FROM" ]; then
  read -ra priors <<< "$PRIORS_FROM"
  [ ${#priors[@]} -gt 0 ] || { echo "submit.sh: PRIORS_FROM holds no folder" >&2; exit 2; }
  abs=()
  for p in "${priors[@]}"; do abs+=("$(cd "$p" && pwd)"); done
  PRIORS_FROM="${abs[*]}"
fi
export STUDY_DIR MODEL NSYS NSHARDS SEED="${SEED:-0}" STUDY_ARGS="${STUDY_ARGS:-}" INFER PRIORS_FROM
array=$(sbatch --parsable --export=ALL --array="0-$((NSHARDS - 1))" \
  --output="$STUDY_DIR/logs/shard-%A_%a.log" "$@" "$here/study-array.sbatch")
array="${array%%;*}" # --parsable prints "jobid[;cluster]"
summary=$(sbatch --parsable --export=ALL --dependency="afterok:$array" \
  --output="$STUDY_DIR/logs/summary-%j.log" "$here/summarize.sbatch")
echo "array job $array ($NSHARDS shards), summary job ${summary%%;*} (after every shard succeeded)"
