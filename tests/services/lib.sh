# shellcheck shell=bash
# lib.sh -- helpers shared by the batchkit test-service scripts in this directory.
# Sourced, never run. Every script sets BK_NAME before sourcing it.
#
# Nothing here (or in any script of this directory) reads /work/shared or any other
# path outside the repository and /tmp: CI machines have only this checkout.

BK_DIR=${BATCHKIT_SERVICES_DIR:-/tmp/batchkit-services}     # env.sh, services.json, apt.log, locks
BK_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BK_PKI_DIR=/tmp/batchkit-pki
BK_T0=$(date +%s%N)
BK_NAME=${BK_NAME:-batchkit}
export BK_DIR BK_PKI_DIR

mkdir -p "$BK_DIR"
# fd 9 is up.sh/down.sh's lock on $BK_DIR/.lock: never let a daemon we start inherit it
# (it would hold the lock for its whole life and the next up.sh would wait forever)
exec 9>&-

# ts MESSAGE -- timestamped progress line (seconds since this script started)
ts() {
  local ms=$(( ($(date +%s%N) - BK_T0) / 1000000 ))
  printf '[%s %4d.%03ds] %s\n' "$BK_NAME" $((ms / 1000)) $((ms % 1000)) "$*"
}
# die MESSAGE -- loud failure
die() { printf '[%s] ERROR: %s\n' "$BK_NAME" "$*" >&2; exit 1; }
# show_logs FILE... -- last lines of each existing log, on stderr
show_logs() {
  local f
  for f in "$@"; do
    [ -f "$f" ] || continue
    printf '%s\n' "----- last 30 lines of $f -----" >&2
    tail -n 30 "$f" >&2
  done
}
need_root() { [ "$(id -u)" = 0 ] || die "must run as root (installs packages, starts daemons)"; }

# running PID -- the process exists and is not a zombie (PID 1 of the CI VMs reaps
# orphans only every ~1.5 s, so a killed daemon stays a zombie that `kill -0` still sees)
running() {
  local st
  kill -0 "$1" 2>/dev/null || return 1
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  [ "${st%% *}" != Z ]
}
# alive PIDFILE -- the process recorded in PIDFILE is running AND is the daemon that
# the file is named after (/proc/PID/comm): /tmp outlives the daemons (e.g. CI ends every
# process of the session, then runs up.sh on the same machine), so a stale pid file may
# name a recycled pid of an unrelated process, which must never be taken for ours or killed.
pid_comm() {
  case "$(basename "$1" .pid)" in
    gridftp) echo globus-gridftp-;;          # comm is cut to 15 characters
    *)       basename "$1" .pid;;            # slurmctld slurmd slurmdbd mariadbd munged xrootd nginx
  esac
}
alive() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null)
  [[ $pid =~ ^[0-9]+$ ]] && running "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$(pid_comm "$1")" ]
}

# stop_pidfile NAME PIDFILE -- TERM the pid in PIDFILE (only that one), wait, then KILL
stop_pidfile() {
  local name=$1 pf=$2 pid
  if alive "$pf"; then
    pid=$(cat "$pf")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do running "$pid" || break; sleep 0.1; done
    if running "$pid"; then kill -9 "$pid" 2>/dev/null || true; sleep 0.2; ts "$name needed SIGKILL"; fi
    ts "stopped $name (pid $pid)"
  else
    ts "$name not running (no live $(pid_comm "$pf") pid in $pf)"
  fi
  rm -f "$pf"
}

# port_busy PORT -- something listens on TCP PORT (any address); says who, on stderr
port_busy() {
  local who
  who=$(ss -Hltnp "( sport = :$1 )" 2>/dev/null) || return 1
  [ -n "$who" ] || return 1
  printf '[%s] port %s is held by: %s\n' "$BK_NAME" "$1" "$(awk '{print $4, $NF}' <<<"$who" | tr '\n' ' ')" >&2
}

# wait_for SECONDS CMD... -- poll CMD every 0.1 s until it succeeds; status of the last try
wait_for() {
  local secs=$1; shift
  local end=$(( $(date +%s) + secs ))
  while :; do
    "$@" && return 0
    [ "$(date +%s)" -lt "$end" ] || break
    sleep 0.1
  done
  "$@"
}

# put MODE DEST < content -- write DEST only if its content differs; status 0 if it changed
put() {
  local tmp; tmp=$(mktemp)
  cat >"$tmp"
  if [ -f "$2" ] && cmp -s "$tmp" "$2"; then rm -f "$tmp"; return 1; fi
  install -D -m "$1" "$tmp" "$2"; rm -f "$tmp"; return 0
}

# ------------------------------------------------------------------ Debian packages
# Packages each service needs (Debian 12 bookworm names).
bk_pkgs() {
  case "$1" in
    common)       echo "curl openssl iproute2 util-linux ca-certificates" ;;
    slurm)        if [ "${BATCHKIT_SLURM_ACCOUNTING:-1}" = 1 ]; then
                    echo "munge slurmctld slurmd slurm-client slurmdbd mariadb-server"
                  else
                    echo "munge slurmctld slurmd slurm-client"
                  fi ;;
    slurm-noacct) echo "munge slurmctld slurmd slurm-client" ;;
    pki)          echo "openssl" ;;
    xrootd)       echo "xrootd-server xrootd-client openssl curl" ;;
    webdav)       echo "nginx libnginx-mod-http-dav-ext openssl curl" ;;
    gridftp)      echo "globus-gridftp-server-progs curl" ;;
    gfal2)        echo "gfal2 gfal2-plugin-file gfal2-plugin-xrootd gfal2-plugin-http gfal2-plugin-gridftp gfal2-util-scripts python3-gfal2" ;;
    *)            die "unknown package set '$1'" ;;
  esac
}

# missing_pkgs PKG... -- print those not installed (one dpkg-query call: fast on reruns)
missing_pkgs() {
  local have
  have=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null | awk '$2 == "installed" {print $1}')
  local p
  for p in "$@"; do
    grep -qx "$p" <<<"$have" || printf '%s\n' "$p"
  done
}

apt_get() {  # serialised with every other apt user of the machine that uses the same lock
  DEBIAN_FRONTEND=noninteractive flock /tmp/apt.lock \
    apt-get -q -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0 "$@"
}

# ensure_pkgs PKG... -- ONE `apt-get update` + ONE `apt-get install` for whatever is missing.
# Daemon starts by package maintainer scripts are always denied (policy-rc.d): every
# daemon is started by our own scripts, bound to loopback, with our own pid files.
ensure_pkgs() {
  local missing
  # shellcheck disable=SC2207  # package names have no spaces
  missing=($(missing_pkgs "$@" | sort -u))
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root
  local log=$BK_DIR/apt.log own_policy=0 rc=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# temporary, from batchkit tests/services: no daemon starts from apt\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d; own_policy=1
  fi
  ts "apt-get update + install (${#missing[@]} missing): ${missing[*]}"
  {
    echo "=== $(date -Is) apt-get update"
    apt_get update
    echo "=== $(date -Is) apt-get install ${missing[*]}"
    apt_get install -y --no-install-recommends "${missing[@]}"
  } >>"$log" 2>&1 || rc=$?
  [ "$own_policy" = 0 ] || rm -f /usr/sbin/policy-rc.d
  if [ "$rc" != 0 ]; then
    show_logs "$log"
    die "apt-get failed (exit $rc); full log: $log"
  fi
  # shellcheck disable=SC2207
  missing=($(missing_pkgs "$@"))
  [ ${#missing[@]} -eq 0 ] || die "still not installed after apt-get: ${missing[*]} (log $log)"
  ts "packages installed (log $log)"
}

# ------------------------------------------------------------------ env.sh / services.json
BK_SERVICES_ALL="slurm slurm-noacct xrootd webdav gridftp"

# select_services [service ...] -- set the array `services` (default: all of them), refuse
# unknown names, and take $BK_DIR/.lock on fd 9 for the rest of the calling script (up.sh
# and down.sh never run at the same time; children close fd 9 again, so daemons never hold it).
select_services() {
  if [ $# -gt 0 ]; then services=("$@"); else read -r -a services <<<"$BK_SERVICES_ALL"; fi
  local s
  for s in "${services[@]}"; do
    [[ " $BK_SERVICES_ALL " == *" $s "* ]] || die "unknown service '$s' (known: $BK_SERVICES_ALL)"
  done
  exec 9>"$BK_DIR/.lock"
  flock -w 900 9 || die "another up.sh/down.sh holds $BK_DIR/.lock"
}

# write_env -- ask every service script whether its service answers, and write
# $BK_DIR/env.sh and $BK_DIR/services.json with the keys of those that do (only them).
write_env() {
  local svc lines="" tmp
  local out
  for svc in $BK_SERVICES_ALL; do
    # `<svc>.sh env` prints the keys only when the service answers (exit 1 otherwise)
    if out=$(bash "$BK_LIB_DIR/$svc.sh" env 2>/dev/null); then lines+=$out$'\n'; fi
  done
  # the test CA, when a TLS server that uses it answers
  if grep -qE '^BATCHKIT_TEST_(XROOTD_HTTPS_URL|DAVS_URL)=' <<<"$lines" && [ -s "$BK_PKI_DIR/ca.pem" ]; then
    lines+="X509_CERT_DIR=$BK_PKI_DIR/ca"$'\n'"BATCHKIT_TEST_CA_PEM=$BK_PKI_DIR/ca.pem"$'\n'
  fi
  # Debian's gfal-* CLI must run under Debian's python3 (the one with gfal2 + gfal2_util)
  if [ -x /usr/bin/python3 ] && [ -x /usr/bin/gfal-copy ] \
     && /usr/bin/python3 -c 'import gfal2, gfal2_util' >/dev/null 2>&1; then
    lines+="GFAL_PYTHONBIN=/usr/bin/python3"$'\n'
  fi
  tmp=$(mktemp "$BK_DIR/.env.XXXXXX")
  {
    echo "# written by tests/services (up.sh/down.sh) at $(date -Is); only services that answered"
    local k v
    while IFS='=' read -r k v; do
      [ -n "$k" ] || continue
      if [[ $v =~ ^[A-Za-z0-9_./:@+,=-]*$ ]]; then
        printf 'export %s=%s\n' "$k" "$v"
      else
        printf 'export %s=%q\n' "$k" "$v"
      fi
    done <<<"$lines"
  } >"$tmp"
  chmod 644 "$tmp"; mv -f "$tmp" "$BK_DIR/env.sh"
  tmp=$(mktemp "$BK_DIR/.json.XXXXXX")
  {
    local first=1
    printf '{'
    while IFS='=' read -r k v; do
      [ -n "$k" ] || continue
      v=${v//\\/\\\\}; v=${v//\"/\\\"}
      [ $first = 1 ] || printf ','
      printf '\n  "%s": "%s"' "$k" "$v"
      first=0
    done <<<"$lines"
    printf '\n}\n'
  } >"$tmp"
  chmod 644 "$tmp"; mv -f "$tmp" "$BK_DIR/services.json"
}
