#!/usr/bin/env bash
# A fault campaign on a real Slurm: starts munged, slurmctld and slurmd for one local node from a
# generated slurm.conf in a temporary folder (private ports and munge socket, so a cluster already
# on the machine is left alone), submits a 4-shard campaign with tools/slurm_campaign.sh and checks
# that the merged results equal an unsharded run's, record for record; then cancels one shard task
# mid-run (scancel), reruns the same command, and checks that only that shard was resubmitted and
# that no trial is lost or duplicated. Stops every daemon it started, by process id.
# Skips (exit 77) with the reason where the daemons cannot start; under SAFNET_REQUIRE_ALL=1 that fails.
# Usage: tests/tools/slurm_test.sh SOURCE_DIR SAFNET
set -euo pipefail
src=$(cd "${1:?usage: slurm_test.sh SOURCE_DIR SAFNET}" && pwd)
safnet=$(cd "$(dirname "${2:?usage: slurm_test.sh SOURCE_DIR SAFNET}")" && pwd)/$(basename "$2")
fail() { echo "slurm_test: FAIL: $*" >&2; exit 1; }
skip() {
  echo "slurm_test: $*; skipped"
  [ "${SAFNET_REQUIRE_ALL:-0}" = 0 ] && exit 77
  echo "slurm_test: SAFNET_REQUIRE_ALL=1: this test must run here" >&2
  exit 1
}
for b in munged slurmctld slurmd sbatch squeue scancel sinfo; do
  command -v "$b" >/dev/null || skip "no $b (Debian packages munge, slurmctld, slurmd, slurm-client: tools/setup.sh)"
done
[ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || [ -d /usr/share/datasets/fashion-mnist ] ||
  skip "dataset-fashion-mnist is not installed"

tmp=$(mktemp -d /tmp/safnet-slurm.XXXXXX)
pids=()
stop() {
  # Jobs first (their steps would outlive slurmd), then the daemons, each by the pid we started.
  if [ -n "${SLURM_CONF:-}" ] && ((${#pids[@]})); then
    squeue -h -o %i 2>/dev/null | xargs -r scancel 2>/dev/null || true
    for _ in $(seq 50); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
  fi
  for ((i = ${#pids[@]} - 1; i >= 0; --i)); do kill "${pids[i]}" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  if [ "${SLURM_TEST_KEEP:-0}" = 1 ]; then echo "slurm_test: kept $tmp"; else rm -rf "$tmp"; fi
}
trap stop EXIT

# --- a one-node cluster -------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
host=$(hostname -s)
user=$(id -un)
mkdir -p "$tmp/munge" "$tmp/state" "$tmp/spool"
chmod 700 "$tmp/munge"
head -c 1024 /dev/urandom >"$tmp/munge/munge.key"
chmod 600 "$tmp/munge/munge.key"
cat >"$tmp/slurm.conf" <<EOF
ClusterName=safnettest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=$user
SlurmdUser=$user
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/munge/munge.socket
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$tmp/slurm.conf
munged -F --force --key-file="$tmp/munge/munge.key" --socket="$tmp/munge/munge.socket" \
  --pid-file="$tmp/munge/munged.pid" --log-file="$tmp/munge/munged.log" --seed-file="$tmp/munge/seed" \
  >"$tmp/munged.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$tmp/munge/munge.socket" ] && break; sleep 0.1; done
[ -S "$tmp/munge/munge.socket" ] || skip "munged did not start: $(tail -n 3 "$tmp/munged.out" "$tmp/munge/munged.log" 2>/dev/null | tr '\n' ' ')"
slurmctld -D -i >"$tmp/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D >"$tmp/slurmd.out" 2>&1 &
pids+=($!)
state=""
for _ in $(seq 100); do
  state=$(sinfo -h -o %T 2>/dev/null || true)
  [ "$state" = idle ] && break
  sleep 0.2
done
[ "$state" = idle ] || skip "the one-node cluster did not come up (node state '${state}'): $(tail -n 3 "$tmp/slurmctld.log" "$tmp/slurmd.log" 2>/dev/null | tr '\n' ' ')"
echo "slurm_test: cluster up: $(sinfo -h -o '%P %D %T %C')"

# Waits until the cluster's queue holds only jobs for which `$1` (a squeue line "%i %T %r") is true.
wait_queue() {
  local keep=$1 deadline=$((SECONDS + 240)) rest
  while ((SECONDS < deadline)); do
    rest=$(squeue -h -o '%i %T %r' | grep -Ev "$keep" || true)
    [ -z "$rest" ] && return 0
    sleep 0.5
  done
  fail "jobs still queued after 240 s: $rest"$'\n'"$(tail -n 20 "$tmp/slurmctld.log")"
}
# The (dtype, ber, trial) keys of a results file, one per line, sorted; duplicates stay.
keys() { python3 -c 'import json, sys
for l in open(sys.argv[1]): r = json.loads(l); print(r["dtype"], r["ber"], r["trial"])' "$1" | sort; }
# The records without their timing, sorted: what must agree between two runs of one campaign.
records() { python3 -c 'import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for r in rows: r.pop("seconds", None)
print("\n".join(sorted(json.dumps(r, sort_keys=True) for r in rows)))' "$1"; }

cd "$tmp"
# The submit command's own errors, before anything is submitted.
expect_error() {  # expect_error MESSAGE ARGS...
  local want=$1; shift
  if "$src/tools/slurm_campaign.sh" "$@" >err.txt 2>&1; then fail "slurm_campaign.sh $* succeeded"; fi
  grep -qF -- "$want" err.txt || fail "slurm_campaign.sh $*: expected '$want', got: $(cat err.txt)"
}
expect_error "--shards N is required" --safnet "$safnet" -- --out x.jsonl
expect_error "need --out RESULTS.jsonl" --shards 2 --safnet "$safnet" -- --trials 3
expect_error "not --shard in the faults flags" --shards 2 --safnet "$safnet" -- --shard 0/2 --out x.jsonl
expect_error "unknown option '--trials'" --shards 2 --trials 3
expect_error "--safnet" --shards 2 --safnet ./no-such-safnet -- --out x.jsonl
env -u SLURM_ARRAY_TASK_ID "$safnet" faults --checkpoint x --out x.jsonl --shard slurm >err.txt 2>&1 && fail "--shard slurm outside an array ran"
grep -q "SLURM_ARRAY_TASK_ID is not set" err.txt || fail "--shard slurm outside an array: $(cat err.txt)"
"$safnet" train --model mlp --saf tanh --dataset fashion-mnist --limit 512 --epochs 1 --batch 64 --quiet \
  --out train >/dev/null 2>&1 || fail "training the test model failed"
ck=$tmp/train/checkpoint.safetensors

# --- 1: four shards, merged and reported, equal the unsharded run ---------------------------------
flags=(--checkpoint "$ck" --limit 300 --dtype f32,f16 --ber 1e-4,1e-3 --trials 6 --seed 3 --quiet)
"$safnet" faults "${flags[@]}" --threads 1 --out ref.jsonl 2>/dev/null
"$src/tools/slurm_campaign.sh" --shards 4 --safnet "$safnet" -- "${flags[@]}" --out a/all.jsonl | tee submit1.txt
grep -q "shard tasks 0,1,2,3 of 4 submitted as job array" submit1.txt || fail "the first submission did not submit every shard"
wait_queue '^$'
for f in a/all.jsonl a/all.md a/all.svg; do [ -s "$f" ] || fail "$f missing after the merge job: $(cat a/all.slurm/merge.log)"; done
for k in 0 1 2 3; do [ -s "a/all.shard-$k-of-4.jsonl" ] || fail "a/all.shard-$k-of-4.jsonl missing"; done
[ "$(records a/all.jsonl)" = "$(records ref.jsonl)" ] || fail "merged records differ from the unsharded run's"
grep -q '| FP16 |' a/all.md || fail "the report table lacks the FP16 rows: $(cat a/all.md)"
echo "slurm_test: 4 shards merged: $(wc -l <a/all.jsonl) records, equal to the unsharded run"
"$src/tools/slurm_campaign.sh" --shards 4 --safnet "$safnet" -- "${flags[@]}" --out a/all.jsonl | tee submit2.txt
grep -q "every trial of the 4 shards is done and merged" submit2.txt || fail "a finished campaign was submitted again"

# --- 2: a shard task cancelled mid-run; the rerun resubmits it alone and loses nothing ------------
flags=(--checkpoint "$ck" --limit 2000 --dtype f32 --ber 1e-3 --trials 400 --seed 5 --quiet)
"$src/tools/slurm_campaign.sh" --shards 4 --safnet "$safnet" -- "${flags[@]}" --out b/all.jsonl | tee submit3.txt
array=$(sed -n 's/.*submitted as job array \([0-9]*\).*/\1/p' submit3.txt)
[ -n "$array" ] || fail "no array job id in: $(cat submit3.txt)"
shard1=b/all.shard-1-of-4.jsonl
for _ in $(seq 600); do [ -s "$shard1" ] && [ "$(wc -l <"$shard1")" -ge 2 ] && break; sleep 0.05; done
scancel "${array}_1"
for _ in $(seq 100); do squeue -h -j "${array}_1" -o %T 2>/dev/null | grep -q . || break; sleep 0.1; done
cut=$(wc -l <"$shard1")
((cut < 101)) || fail "shard 1 finished (${cut} records) before it could be cancelled; the test needs longer tasks"
echo "slurm_test: shard task ${array}_1 cancelled after $cut of 101 records"
# The other tasks finish; the merge job then waits forever on the cancelled one.
wait_queue ' PENDING DependencyNeverSatisfied$'
"$src/tools/slurm_campaign.sh" --shards 4 --safnet "$safnet" -- "${flags[@]}" --out b/all.jsonl | tee submit4.txt
grep -q "cancelling job" submit4.txt || fail "the stale merge job was not replaced"
grep -q "shard tasks 1 of 4 submitted" submit4.txt || fail "the rerun did not resubmit shard 1 alone"
wait_queue '^$'
[ -s b/all.jsonl ] || fail "b/all.jsonl missing after the rerun: $(cat b/all.slurm/merge.log)"
expected=$(python3 -c 'print("\n".join(sorted(f"f32 0.001 {t}" for t in range(-1, 400))))')
[ "$(keys b/all.jsonl)" = "$expected" ] || fail "the merged file does not hold each of the 401 trials exactly once"
dups=$(for k in 0 1 2 3; do keys "b/all.shard-$k-of-4.jsonl"; done | sed 's/ -1$/ clean/' | sort | uniq -d | grep -v ' clean$' || true)
[ -z "$dups" ] || fail "trials written twice across the shard files: $dups"
[ "$(keys "$shard1" | uniq -d)" = "" ] || fail "$shard1 holds a trial twice"
echo "slurm_test: rerun resubmitted shard 1 only; $(wc -l <b/all.jsonl) trials, none lost or duplicated"
echo "slurm_test: passed"
