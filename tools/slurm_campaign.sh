#!/usr/bin/env bash
# Submits a whole fault campaign to Slurm: a job array of shard tasks, each running
# `safnet faults ... --shard slurm/N` into its own file (OUT.shard-k-of-N.jsonl), then a merge +
# report job that starts when every task has succeeded (--dependency=afterok). Rerun the same
# command after a failure or a cancel: it resubmits only the shards with trials still to run (each
# resumes exactly where it stopped) and the merge job; with nothing left to run it says so.
#
# Usage: tools/slurm_campaign.sh --shards N [--gpus] [--sbatch 'OPTIONS']... [--safnet PATH] \
#            -- FAULTS FLAGS (--checkpoint, --data, --dtype, --ber, --trials, --seed, --out F.jsonl, ...)
#   --shards N     shard tasks (trial t belongs to shard t mod N)
#   --gpus         one GPU per task: sbatch --gres=gpu:1 and safnet --device cuda (the task's GPU, as
#                  Slurm exposes it through CUDA_VISIBLE_DEVICES), unless the flags give --device
#   --sbatch OPTS  extra sbatch options for both jobs (e.g. '--partition=gpu --time=4:00:00')
#   --safnet PATH  the safnet binary the jobs run [build/safnet of this checkout]
# Writes, next to F.jsonl: the shard files, F.md (the report's table), F.svg (accuracy vs BER) and
# F.slurm/ (the job scripts and one log per task). Each task runs --threads $SLURM_CPUS_PER_TASK
# unless the flags give --threads.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "slurm_campaign: $*" >&2; exit 1; }

shards="" gpus=0 safnet=$root/build/safnet sbatch_opts=()
while [ $# -gt 0 ]; do
  case "$1" in
    --shards) shards=${2:?--shards needs a number}; shift 2 ;;
    --gpus) gpus=1; shift ;;
    --sbatch) read -r -a more <<<"${2:?--sbatch needs options}"; sbatch_opts+=("${more[@]}"); shift 2 ;;
    --safnet) safnet=${2:?--safnet needs a path}; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (the faults flags go after --; see --help)" ;;
  esac
done
flags=("$@")
[[ $shards =~ ^[1-9][0-9]*$ ]] || die "--shards N is required (a number >= 1), got '${shards}'"
[ -x "$safnet" ] || die "$safnet is not an executable; build it (tools/build.sh --target safnet) or give --safnet"
safnet=$(cd "$(dirname "$safnet")" && pwd)/$(basename "$safnet")
command -v sbatch >/dev/null || die "sbatch not found: run this on a Slurm login node (or install slurm-client)"

out="" has_threads=0 has_device=0
absolute() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
for ((i = 0; i < ${#flags[@]}; ++i)); do
  case "${flags[i]}" in
    --out) out=$(absolute "${flags[i + 1]:-}"); flags[i + 1]=$out ;;
    --out=*) out=$(absolute "${flags[i]#--out=}"); flags[i]=--out=$out ;;
    --shard|--shard=*) die "give the shard count with --shards N, not --shard in the faults flags" ;;
    --until-ci|--until-ci=*) die "--until-ci decides every trial of a cell in order, in one process: it cannot be sharded" ;;
    --threads|--threads=*) has_threads=1 ;;
    --device|--device=*) has_device=1 ;;
  esac
done
[ -n "$out" ] && [ "$out" != "$PWD/" ] || die "the faults flags need --out RESULTS.jsonl (the merged results)"
base=$(basename "$out")
stem=$(dirname "$out")/${base%.*}
[[ $base == ?*.* ]] || stem=$out  # no extension (a leading dot is not one)
jobdir=$stem.slurm
mkdir -p "$jobdir"
# One name for all of the campaign's jobs, so a rerun finds what is still queued.
name=safnet-$(basename "$stem")-$(printf '%s' "$out" | sha1sum | cut -c1-8)

# Jobs of this campaign still in the queue: a merge job whose shard task failed or was cancelled
# waits forever (DependencyNeverSatisfied) and is replaced; anything else must finish first.
while read -r id state reason; do
  [ -n "$id" ] || continue
  if [ "$state" = PENDING ] && [ "$reason" = DependencyNeverSatisfied ]; then
    echo "slurm_campaign: cancelling job $id: it waits on a shard task that did not succeed"
    scancel "$id"
  else
    die "job $id of this campaign is still $state ($name); wait for it or scancel it, then rerun"
  fi
done < <(squeue -h -n "$name" -o '%i %T %r')

# Which shards have trials left: safnet computes it from the files, with the names the tasks use.
pending=$("$safnet" faults "${flags[@]}" --pending-shards "$shards") || die "safnet faults could not check the shards (above)"
todo=() files=()
while IFS=$'\t' read -r k file left; do
  files+=("$file")
  [ "$left" -gt 0 ] && todo+=("$k")
done <<<"$pending"
((${#files[@]} == shards)) || die "safnet faults --pending-shards gave ${#files[@]} lines, expected $shards"

table=$stem.md plot=$stem.svg
if ((${#todo[@]} == 0)) && [ -f "$out" ] && [ -f "$table" ] &&
   [ -z "$(find "${files[@]}" -newer "$out" 2>/dev/null)" ]; then
  echo "slurm_campaign: every trial of the $shards shards is done and merged: $out, $table, $plot"
  exit 0
fi

q() { printf '%q ' "$@"; }
task_flags=("${flags[@]}" --shard "slurm/$shards")
gres=()
if ((gpus)); then
  gres=(--gres=gpu:1)
  ((has_device)) || task_flags+=(--device cuda)
fi
{
  echo '#!/usr/bin/env bash'
  echo "# One shard task of the campaign writing $out (tools/slurm_campaign.sh)."
  echo 'set -euo pipefail'
  echo "flags=($(q "${task_flags[@]}"))"
  ((has_threads)) || echo 'flags+=(--threads "${SLURM_CPUS_PER_TASK:-1}")'
  echo "exec $(q "$safnet")faults \"\${flags[@]}\""
} >"$jobdir/task.sh"
{
  echo '#!/usr/bin/env bash'
  echo "# Merges the shard files of the campaign writing $out and reports it (tools/slurm_campaign.sh)."
  echo 'set -euo pipefail'
  q "$safnet" merge --out "$out" "${files[@]}"; echo
  echo "$(q "$safnet" report "$out" --svg "$plot")> $(q "$table.tmp")"
  echo "mv $(q "$table.tmp" "$table")"
} >"$jobdir/merge.sh"
chmod +x "$jobdir/task.sh" "$jobdir/merge.sh"

dependency=()
if ((${#todo[@]})); then
  array=$(IFS=,; echo "${todo[*]}")
  array_job=$(sbatch --parsable --job-name="$name" --array="$array" --chdir="$PWD" \
    --output="$jobdir/task-%a.log" --open-mode=append "${gres[@]}" "${sbatch_opts[@]}" "$jobdir/task.sh")
  array_job=${array_job%%;*}
  dependency=(--dependency="afterok:$array_job")
  echo "slurm_campaign: shard tasks ${array} of $shards submitted as job array $array_job (logs: $jobdir/task-K.log)"
fi
merge_job=$(sbatch --parsable --job-name="$name" --chdir="$PWD" --output="$jobdir/merge.log" \
  "${dependency[@]}" "${sbatch_opts[@]}" "$jobdir/merge.sh")
merge_job=${merge_job%%;*}
echo "slurm_campaign: merge + report submitted as job $merge_job${dependency:+, after job ${array_job}}"
echo "slurm_campaign: results $out, table $table, plot $plot (when job $merge_job has finished)"
