#!/usr/bin/env bash
# A single-node SLURM cluster on localhost for the test suite (needs root).
#
#   tests/slurm/start-cluster.sh     install slurm-wlm + munge if missing, start munged,
#                                    slurmctld and slurmd, wait until the node is idle
#   tests/slurm/stop-cluster.sh      stop them again (by the PIDs recorded here)
#
# The node takes its CPUs and memory from `slurmd -C`, has one partition `debug` and two
# fake GPUs: a `gpu` GRES of type `fake` backed by device nodes of no driver. SLURM schedules them like
# real devices (a job asking `--gpus=1` gets one and CUDA_VISIBLE_DEVICES), so the
# profile's GPU requests are exercised; the job itself still runs on the CPU.
# No accounting database: finished jobs are recorded by jobcomp/filetxt in
# $COT_SLURM_DIR/jobcomp.txt (one line per job), which the test reads.
#
# The config must be /etc/slurm/slurm.conf: the Snakemake SLURM plugin removes every
# SLURM_* variable (SLURM_CONF included) before it calls sbatch and srun. An existing
# slurm.conf that this script did not write is never touched.
set -euo pipefail

DIR=${COT_SLURM_DIR:-/var/lib/cot-slurm}
CONF=/etc/slurm/slurm.conf
GRES_CONF=/etc/slurm/gres.conf
MARK="# written by cot-potential tests/slurm/start-cluster.sh"
GPUS=2

die() { echo "start-cluster: $*" >&2; exit 1; }
alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
died() { [[ -s $1 ]] && ! kill -0 "$(cat "$1")" 2>/dev/null; }  # wrote its PID, then exited

[[ $(id -u) == 0 ]] || die "needs root (it installs packages and starts daemons)"

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    echo "start-cluster: installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq slurm-wlm munge >/dev/null \
        || { apt-get update -qq && apt-get install -y -qq slurm-wlm munge >/dev/null; }
fi

for conf in "$CONF" "$GRES_CONF"; do
    if [[ -e $conf ]] && ! grep -qxF "$MARK" "$conf"; then
        die "$conf exists and was not written by this script: not touching a real cluster's config"
    fi
done
if alive "$DIR/slurmctld.pid" || alive "$DIR/slurmd.pid"; then
    die "a cluster started from $DIR is still running: run tests/slurm/stop-cluster.sh first"
fi

host=$(hostname -s)
# slurmd -C prints this machine as a NodeName line (CPUs, sockets, cores, RealMemory).
node=$(slurmd -C | grep '^NodeName=')
[[ $node == "NodeName=$host "* ]] || die "unexpected 'slurmd -C' output: $node"

rm -rf "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR"/slurm*.pid
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/dev"
# slurmd accepts only character or block devices as GRES files; major 240 is reserved for
# local/experimental use, so these nodes belong to no driver (opening one fails: ENXIO).
for i in $(seq 0 $((GPUS - 1))); do
    [[ -c $DIR/dev/gpu$i ]] || { rm -f "$DIR/dev/gpu$i"; mknod "$DIR/dev/gpu$i" c 240 "$i"; }
done
: > "$DIR/jobcomp.txt"
chown slurm:slurm "$DIR/state" "$DIR/log" "$DIR/jobcomp.txt"
chmod 755 "$DIR"

mkdir -p /etc/slurm
cat > "$CONF" <<EOF
$MARK
ClusterName=cot-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
# Finished jobs stay known to squeue and scontrol this long: the plugin's squeue status
# query needs it, and the test reads each job's request (scontrol show job) after the run.
MinJobAge=3600
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
GresTypes=gpu
$node NodeAddr=127.0.0.1 Gres=gpu:fake:$GPUS State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
cat > "$GRES_CONF" <<EOF
$MARK
AutoDetect=off
NodeName=$host Name=gpu Type=fake File=$DIR/dev/gpu[0-$((GPUS - 1))]
EOF

# munged: reuse one that already answers on the default socket; otherwise start our own
# and record its PID so that stop-cluster.sh stops only what we started.
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    echo "start-cluster: using the running munged"
else
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    cp /run/munge/munged.pid "$DIR/munged.pid"
fi

slurmctld
slurmd -N "$host"

# A daemon that cannot start exits soon after writing its PID (the reason is in its log);
# sinfo against a dead controller would retry for minutes.
deadline=$((SECONDS + 60))
state=
while (( SECONDS < deadline )); do
    if died "$DIR/slurmctld.pid" || died "$DIR/slurmd.pid"; then break; fi
    state=$(timeout 5 sinfo -h -n "$host" -o %T 2>/dev/null || true)
    [[ $state == idle ]] && break
    sleep 1
done
if [[ $state != idle ]]; then
    tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2
    die "node $host is '${state:-unreachable}' (see the logs above); stop with tests/slurm/stop-cluster.sh"
fi

# Self-check: a job that asks for a GPU is scheduled and sees its device.
devices=$(srun --gpus=1 --time=1 --mem=100 printenv CUDA_VISIBLE_DEVICES) \
    || die "srun --gpus=1 failed"
echo "start-cluster: node $host idle ($node); a --gpus=1 job saw CUDA_VISIBLE_DEVICES=$devices"
echo "start-cluster: jobcomp records in $DIR/jobcomp.txt, logs in $DIR/log"
