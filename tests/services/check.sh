#!/usr/bin/env bash
# check.sh [service ...] -- one line per service: up/down and how that was established by
# a real round trip (default: all services):
#   slurm         scontrol ping, sinfo (node idle/mixed/allocated), sacct through slurmdbd
#   slurm-noacct  the same with SLURM_CONF=<its conf>; sacct must say accounting is disabled
#   xrootd        xrdcp upload + download, xrdfs checksum (adler32), https GET with
#                 Want-Digest: adler32 from XrdHttp compared with it
#   webdav        curl MKCOL (no trailing '/'), PUT, GET, DELETE on the http and https ports
#   gridftp       curl anonymous FTP STOR + RETR
#   gfal2         (only when asked for) Debian gfal2 importable by /usr/bin/python3, plugins
# Exit status: non-zero if any requested service is down. Needs no root for the checks
# themselves (but the data dirs are root's).
set -uo pipefail
BK_NAME=check
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ $# -gt 0 ]; then services=("$@"); else read -r -a services <<<"$BK_SERVICES_ALL"; fi
rc=0
for s in "${services[@]}"; do
  if [ "$s" = gfal2 ]; then
    if out=$(/usr/bin/python3 -c 'import gfal2; gfal2.creat_context(); print(gfal2.get_version())' 2>&1); then
      plugins=$(find /usr/lib/x86_64-linux-gnu/gfal2-plugins/ -name 'libgfal_plugin_*.so' -printf '%f\n' 2>/dev/null \
                | sed 's/libgfal_plugin_//; s/\.so$//' | sort | tr '\n' ' ')
      printf '%-13s up    (/usr/bin/python3: gfal2 %s; plugins: %s)\n' gfal2 "$out" "$plugins"
    else
      printf '%-13s down  (/usr/bin/python3 cannot import gfal2: %s)\n' gfal2 "$(tail -n 1 <<<"$out")"; rc=1
    fi
    continue
  fi
  if [[ " $BK_SERVICES_ALL " != *" $s "* ]]; then
    printf '%-13s down  (unknown service; known: %s gfal2)\n' "$s" "$BK_SERVICES_ALL"; rc=1; continue
  fi
  bash "$BK_LIB_DIR/$s.sh" check || rc=1
done
exit $rc
