#!/usr/bin/env bash
# Single-node Slurm on localhost for the integration tests (tests/integration/test_slurm*.py).
# Idempotent: safe to run again; restarts the daemons with the config below.
# Run as root on Debian 12. No slurmdbd: sacct is unavailable and llem falls back to
# squeue + the per-run state files.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq slurm-wlm munge >/dev/null
fi

# -- munge ------------------------------------------------------------------------------
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! pgrep -x munged >/dev/null; then
  runuser -u munge -- /usr/sbin/munged
fi
for _ in $(seq 1 20); do munge -n >/dev/null 2>&1 && break; sleep 0.5; done
munge -n | unmunge >/dev/null

# -- slurm.conf -------------------------------------------------------------------------
CPUS=$(nproc)
[ "$CPUS" -lt 2 ] && CPUS=2
MEM=$(awk '/MemTotal/ {print int($2/1024*0.8)}' /proc/meminfo)
install -d /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=llem-ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=10
Waittime=0
NodeName=localhost CPUs=${CPUS} RealMemory=${MEM} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
# cgroup.conf is read even with proctrack/linuxproc on newer releases; keep it inert
cat > /etc/slurm/cgroup.conf <<CONF
CgroupPlugin=autodetect
IgnoreSystemd=yes
CONF

# -- daemons (restart so a changed conf applies) ------------------------------------------
for d in slurmctld slurmd; do
  if [ -f /run/$d.pid ] && kill -0 "$(cat /run/$d.pid)" 2>/dev/null; then
    kill "$(cat /run/$d.pid)" || true
    for _ in $(seq 1 20); do kill -0 "$(cat /run/$d.pid)" 2>/dev/null || break; sleep 0.5; done
  fi
done
/usr/sbin/slurmctld -i
/usr/sbin/slurmd

for _ in $(seq 1 60); do
  state=$(sinfo --noheader --nodes=localhost --format=%T 2>/dev/null | head -1 || true)
  case "$state" in
    idle|mixed|allocated) echo "slurm ready: localhost $state ($CPUS CPUs)"; exit 0 ;;
    down*|drain*) scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true ;;
  esac
  sleep 1
done
echo "slurm did not become ready; see /var/log/slurm/*.log" >&2
sinfo >&2 || true
exit 1
