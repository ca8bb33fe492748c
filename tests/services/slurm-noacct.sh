#!/usr/bin/env bash
# slurm-noacct.sh [start|stop|status|check|env] -- a SECOND, independent test Slurm cluster
# on the same machine, WITHOUT accounting (AccountingStorageType=accounting_storage/none):
# `sacct` prints "Slurm accounting storage is disabled", finished jobs are visible only
# through `squeue -t all` / `scontrol show job` (MinJobAge) -- the code path batchkit
# needs when a site has no slurmdbd.
#
# It shares munged with slurm.sh but has its own config file, ports, state/spool/log
# dirs, ClusterName (bknoacct), NodeName (noacct, NodeAddr 127.0.0.1, slurmd -N noacct)
# and job ids (FirstJobId=1000000, so an id never names a job on both clusters).
# Clients reach it ONLY through SLURM_CONF:
#   SLURM_CONF=/tmp/batchkit-slurm-noacct/slurm.conf sbatch --wrap 'exit 3'
#   SLURM_CONF=/tmp/batchkit-slurm-noacct/slurm.conf scontrol show job <id>
# Ports: slurmctld 6827, slurmd 6828 (127.0.0.1, see slurm-common.sh).
# Knobs: BATCHKIT_SLURM_NOACCT_DIR (default /tmp/batchkit-slurm-noacct),
#   BATCHKIT_SLURM_NOACCT_CTLD_PORT=6827, BATCHKIT_SLURM_NOACCT_SLURMD_PORT=6828,
#   BATCHKIT_SLURM_NOACCT_CPUS (default: BATCHKIT_SLURM_CPUS or 32); the memory,
#   MinJobAge, MaxArraySize, MaxJobCount and wait knobs of slurm.sh apply here too.
# Commands as in slurm.sh.
set -euo pipefail
BK_NAME=slurm-noacct
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SL_DIR=${BATCHKIT_SLURM_NOACCT_DIR:-/tmp/batchkit-slurm-noacct}
SL_CONF=$SL_DIR/slurm.conf
SL_CLUSTER=bknoacct
SL_NODE=noacct
SL_CTLD_PORT=${BATCHKIT_SLURM_NOACCT_CTLD_PORT:-6827}
SL_SLURMD_PORT=${BATCHKIT_SLURM_NOACCT_SLURMD_PORT:-6828}
SL_ACCT=0
SL_CPUS=${BATCHKIT_SLURM_NOACCT_CPUS:-${BATCHKIT_SLURM_CPUS:-32}}
SL_MEM=${BATCHKIT_SLURM_MEM_MB:-$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)}
SL_DEFMEM=${BATCHKIT_SLURM_DEFMEMPERCPU:-100}
SL_MINJOBAGE=${BATCHKIT_SLURM_MINJOBAGE:-3600}
SL_MAXARRAY=${BATCHKIT_SLURM_MAX_ARRAY_SIZE:-100001}
SL_MAXJOBS=${BATCHKIT_SLURM_MAX_JOB_COUNT:-100000}
SL_FIRSTJOBID=1000000
SL_WAIT=${BATCHKIT_SLURM_WAIT:-60}
# shellcheck source=slurm-common.sh
. "$BK_LIB_DIR/slurm-common.sh"

sl_env() {
  echo "BATCHKIT_TEST_SLURM_NOACCT_CONF=$SL_CONF"
  echo "BATCHKIT_TEST_SLURM_NOACCT_CLUSTER=$SL_CLUSTER"
  echo "BATCHKIT_TEST_SLURM_NOACCT_PARTITION=debug"
}

sl_main "$@"
