#!/usr/bin/env bash
# down.sh [service ...] -- stop what up.sh started (default: all services), by OUR pid
# files only, never by process name. munged (shared by both Slurm clusters) is stopped
# when neither cluster runs any more and up.sh had started it. Job state, data dirs, the
# test PKI and the installed packages are kept (BATCHKIT_SLURM_WIPE=1: forget Slurm jobs).
# Rewrites /tmp/batchkit-services/env.sh and services.json for what still answers.
set -euo pipefail
BK_NAME=down
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root

select_services "$@"

rc=0
for s in "${services[@]}"; do
  bash "$BK_LIB_DIR/$s.sh" stop || { rc=1; ts "stopping $s failed"; }
done
if ! alive "${BATCHKIT_SLURM_DIR:-/tmp/batchkit-slurm}/slurmctld.pid" \
   && ! alive "${BATCHKIT_SLURM_NOACCT_DIR:-/tmp/batchkit-slurm-noacct}/slurmctld.pid"; then
  [ -e "$BK_DIR/munged.pid" ] && stop_pidfile munged "$BK_DIR/munged.pid"
fi
write_env
ts "env.sh now: $(grep -c '^export' "$BK_DIR/env.sh") keys"
exit $rc
