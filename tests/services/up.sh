#!/usr/bin/env bash
# up.sh [service ...] -- install (Debian 12, as root) and start the REAL services the
# batchkit test suite uses, on loopback only, then describe them in
#   /tmp/batchkit-services/env.sh         (`export KEY=value` lines, sourceable)
#   /tmp/batchkit-services/services.json  (the same keys as one JSON object)
# Only services that answer get their keys written.
#
# Services: slurm slurm-noacct xrootd webdav gridftp (default: all of them).
# Steps: ONE `apt-get update` + ONE `apt-get install --no-install-recommends` for every
# missing package (none when all are there), the test PKI, then each service's own
# script (<service>.sh start), then env.sh/services.json. Idempotent: when everything is
# up it only checks (about a second) and exits 0. Exit status non-zero if any service did
# not come up; its log tail is printed above.
# Knobs: BATCHKIT_GFAL2=1 (0: do not install gfal2 + plugins + CLI);
#        BATCHKIT_GFAL2_VENV=<venv> (also make `import gfal2` work there, gfal2-python.sh);
#        every <service>.sh knob (see README.md); BATCHKIT_SERVICES_DIR (/tmp/batchkit-services).
set -euo pipefail
BK_NAME=up
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root

select_services "$@"

step_t0=0
step_begin() { step_t0=$(date +%s%N); }
step_end() {  # step_end NAME STATUS
  local ms=$(( ($(date +%s%N) - step_t0) / 1000000 ))
  ts "$(printf 'step %-14s %-6s %3d.%03ds' "$1" "$2" $((ms / 1000)) $((ms % 1000)))"
}

# ---------------------------------------------------------------- 1. packages
step_begin
pkgs=$(bk_pkgs common)
for s in "${services[@]}"; do pkgs+=" $(bk_pkgs "$s")"; done
[ "${BATCHKIT_GFAL2:-1}" = 0 ] || pkgs+=" $(bk_pkgs gfal2)"
# shellcheck disable=SC2086
ensure_pkgs $pkgs
export BK_PKGS_DONE=1
step_end packages ok

# ---------------------------------------------------------------- 2. test PKI
if [[ " ${services[*]} " == *" xrootd "* || " ${services[*]} " == *" webdav "* ]]; then
  step_begin
  bash "$BK_LIB_DIR/pki.sh"
  export BK_PKI_DONE=1
  step_end pki ok
fi

# ---------------------------------------------------------------- 3. services
failed=()
for s in "${services[@]}"; do
  step_begin
  if bash "$BK_LIB_DIR/$s.sh" start; then
    step_end "$s" ok
  else
    step_end "$s" FAILED
    failed+=("$s")
  fi
done

# ---------------------------------------------------------------- 4. gfal2 in a venv
if [ -n "${BATCHKIT_GFAL2_VENV:-}" ]; then
  step_begin
  if bash "$BK_LIB_DIR/gfal2-python.sh" "$BATCHKIT_GFAL2_VENV"; then step_end gfal2-venv ok
  else step_end gfal2-venv FAILED; failed+=(gfal2-venv); fi
fi

# ---------------------------------------------------------------- 5. env.sh / services.json
step_begin
write_env
step_end env ok
ts "$BK_DIR/env.sh:"
sed -n 's/^export /  /p' "$BK_DIR/env.sh"
if [ ${#failed[@]} -gt 0 ]; then
  die "FAILED to start: ${failed[*]} (logs above; keys written only for services that answer)"
fi
ts "all up: ${services[*]}"
