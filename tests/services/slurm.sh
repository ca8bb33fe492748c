#!/usr/bin/env bash
# slurm.sh [start|stop|status|check|env] -- the MAIN test Slurm cluster: a real single-node
# Slurm 22.05 (Debian slurm-wlm) with slurmdbd + MariaDB accounting, so sacct works.
#
#   start  (default) install what is missing, start munged, mariadbd, slurmdbd, slurmctld,
#          slurmd (each only if not already running) and wait until the node is idle
#   stop   stop slurmd, slurmctld, slurmdbd, mariadbd by OUR pid files (munged: see down.sh)
#   status exit 0 if slurmctld answers and the node is usable
#   check  one line "slurm up|down (...)" after a real sinfo + sacct round trip
#   env    KEY=value lines for env.sh (nothing, exit 1, when it does not answer)
#
# Clients need no SLURM_CONF: the config is the default /etc/slurm/slurm.conf.
# Ports (all bound to 127.0.0.1 through CommunicationParameters, see slurm-common.sh):
#   slurmctld 6817, slurmd 6818, slurmdbd 6819; MariaDB: unix socket only.
# Knobs (environment):
#   BATCHKIT_SLURM_ACCOUNTING=1     0 = no slurmdbd/MariaDB (fallback; sacct then says
#                                   "Slurm accounting storage is disabled")
#   BATCHKIT_SLURM_CPUS=32          CPUs the node advertises (more than the real cores is
#                                   fine: SlurmdParameters=config_overrides); ~1 job start per
#                                   CPU per second, so many CPUs = fast trivial-job tests
#   BATCHKIT_SLURM_MEM_MB           RealMemory of the node (default 90% of MemTotal)
#   BATCHKIT_SLURM_DEFMEMPERCPU=100 MB given to jobs that request no memory
#   BATCHKIT_SLURM_MINJOBAGE=3600   seconds finished jobs stay in squeue -t all / scontrol
#   BATCHKIT_SLURM_MAX_ARRAY_SIZE=100001   MaxArraySize (array indices up to 100000)
#   BATCHKIT_SLURM_MAX_JOB_COUNT=100000    MaxJobCount
#   BATCHKIT_SLURM_WAIT=60          seconds to wait for the node to become idle
#   BATCHKIT_SLURM_DIR=/tmp/batchkit-slurm   state, spool, logs, pid files
#   BATCHKIT_SLURM_CONF=/etc/slurm/slurm.conf, BATCHKIT_SLURM_CTLD_PORT=6817,
#   BATCHKIT_SLURM_SLURMD_PORT=6818   (another path means clients need SLURM_CONF)
# Changing a knob and running start again rewrites slurm.conf and restarts the daemons.
set -euo pipefail
BK_NAME=slurm
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SL_DIR=${BATCHKIT_SLURM_DIR:-/tmp/batchkit-slurm}
SL_CONF=${BATCHKIT_SLURM_CONF:-/etc/slurm/slurm.conf}
SL_CLUSTER=batchkit
SL_NODE=localhost
SL_CTLD_PORT=${BATCHKIT_SLURM_CTLD_PORT:-6817}
SL_SLURMD_PORT=${BATCHKIT_SLURM_SLURMD_PORT:-6818}
SL_ACCT=${BATCHKIT_SLURM_ACCOUNTING:-1}
SL_CPUS=${BATCHKIT_SLURM_CPUS:-32}
SL_MEM=${BATCHKIT_SLURM_MEM_MB:-$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)}
SL_DEFMEM=${BATCHKIT_SLURM_DEFMEMPERCPU:-100}
SL_MINJOBAGE=${BATCHKIT_SLURM_MINJOBAGE:-3600}
SL_MAXARRAY=${BATCHKIT_SLURM_MAX_ARRAY_SIZE:-100001}
SL_MAXJOBS=${BATCHKIT_SLURM_MAX_JOB_COUNT:-100000}
SL_FIRSTJOBID=1
SL_WAIT=${BATCHKIT_SLURM_WAIT:-60}
# shellcheck source=slurm-common.sh
. "$BK_LIB_DIR/slurm-common.sh"

sl_env() {
  echo "BATCHKIT_TEST_SLURM=1"
  echo "BATCHKIT_TEST_SLURM_CONF=$SL_CONF"
  echo "BATCHKIT_TEST_SLURM_CLUSTER=$SL_CLUSTER"
  echo "BATCHKIT_TEST_SLURM_PARTITION=debug"
  echo "BATCHKIT_TEST_SLURM_CPUS=$(part_cpus)"
  if conf_has_acct && alive "$SL_DIR/slurmdbd.pid"; then echo "BATCHKIT_TEST_SLURM_ACCOUNTING=1"; else echo "BATCHKIT_TEST_SLURM_ACCOUNTING=0"; fi
}

sl_main "$@"
