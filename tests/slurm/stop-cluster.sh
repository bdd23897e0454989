#!/usr/bin/env bash
# Stop the localhost cluster of start-cluster.sh: slurmd, slurmctld and (if it started it)
# munged, each by the PID it recorded; then remove the config files it wrote. Safe to run
# when nothing is running. Keeps $COT_SLURM_DIR (jobcomp records and daemon logs).
set -uo pipefail

DIR=${COT_SLURM_DIR:-/var/lib/cot-slurm}
MARK="# written by cot-potential tests/slurm/start-cluster.sh"

stop() {  # stop <name> <pid file>
    local name=$1 file=$2 pid
    [[ -s $file ]] || return 0
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "stop-cluster: $name ($pid) ignored SIGTERM for 10 s: SIGKILL" >&2
            kill -KILL "$pid"
        fi
        echo "stop-cluster: stopped $name ($pid)"
    fi
    rm -f "$file"
}

# Jobs still queued or running (a test that failed half-way) would be orphaned by slurmd.
if [[ -s $DIR/slurmctld.pid ]] && kill -0 "$(cat "$DIR/slurmctld.pid")" 2>/dev/null; then
    scancel --full --quiet "--user=$(id -un)" 2>/dev/null || true
fi
stop slurmd "$DIR/slurmd.pid"
stop slurmctld "$DIR/slurmctld.pid"
stop munged "$DIR/munged.pid"

for conf in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do
    if [[ -e $conf ]] && grep -qxF "$MARK" "$conf"; then rm -f "$conf"; fi
done
exit 0
