#!/usr/bin/env bash
# gridftp.sh [start|stop|status|check|env] -- a real Globus GridFTP server (Debian
# globus-gridftp-server-progs 13.24) on 127.0.0.1:2811 in ANONYMOUS clear-text mode,
# for tests through gfal2's gridftp plugin with ftp:// URLs.
#
# URL form: ftp://127.0.0.1:2811/<ABSOLUTE path inside the data dir>, e.g.
#   $BATCHKIT_TEST_GRIDFTP_URL$BATCHKIT_TEST_GRIDFTP_DATA/x.txt
#   = ftp://127.0.0.1:2811/tmp/batchkit-gridftp/data/x.txt
# Anonymous sessions run as nobody:nogroup, so the data dir is world-writable (1777 is
# not enough: gfal2 deletes what it wrote), and files written through it belong to nobody.
# gsiftp:// (GSI, X.509 proxies) is NOT set up: it needs a host cert and a VOMS proxy.
# Knobs: BATCHKIT_GRIDFTP_PORT=2811, BATCHKIT_GRIDFTP_DIR=/tmp/batchkit-gridftp
set -euo pipefail
BK_NAME=gridftp
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=${BATCHKIT_GRIDFTP_PORT:-2811}
D=${BATCHKIT_GRIDFTP_DIR:-/tmp/batchkit-gridftp}
PIDF=$D/gridftp.pid
LOG=$D/gridftp.log

# the FTP greeting "220 ..." on a plain TCP connect
answers() { timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; head -c 3 <&3" 2>/dev/null | grep -q 220; }

start() {
  need_root
  # shellcheck disable=SC2046
  [ "${BK_PKGS_DONE:-0}" = 1 ] || ensure_pkgs $(bk_pkgs common) $(bk_pkgs gridftp)
  if alive "$PIDF"; then
    if answers; then ts "already running: ftp://127.0.0.1:$PORT$D/data (pid $(cat "$PIDF"))"; return 0; fi
    stop_pidfile "gridftp (not answering)" "$PIDF"
  fi
  port_busy "$PORT" && die "port $PORT is used by a process that is not ours ($PIDF)"
  mkdir -p "$D/data"; chmod 777 "$D/data"
  # -S: detach; -aa: allow anonymous; control AND data channels on loopback only
  globus-gridftp-server -S -p "$PORT" -aa -anonymous-user nobody -anonymous-group nogroup \
    -control-interface 127.0.0.1 -data-interface 127.0.0.1 -hostname 127.0.0.1 \
    -home-dir "$D/data" -restrict-paths "$D/data" -l "$LOG" -pidfile "$PIDF" \
    || { show_logs "$LOG"; die "globus-gridftp-server failed to start"; }
  wait_for 10 answers || { show_logs "$LOG"; die "gridftp server did not answer on 127.0.0.1:$PORT"; }
  wait_for 5 alive "$PIDF" || true
  ts "up: ftp://127.0.0.1:$PORT$D/data/ (anonymous; pid $(cat "$PIDF" 2>/dev/null || echo ?), log $LOG)"
}

# a real round trip with curl's FTP client: STOR, RETR, compare (paths absolute: %2F)
check() {
  local label; label=$(printf '%-13s' gridftp)
  answers || { echo "$label down  (no '220' greeting on 127.0.0.1:$PORT)"; return 1; }
  local w; w=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$w'" RETURN
  printf 'batchkit check %s\nline 2\r\n' "$(date +%s%N)" >"$w/in"
  local url="ftp://127.0.0.1:$PORT/%2F${D#/}/data/.bk-check.txt"
  # gotcha: this server fixes the transfer TYPE when the data channel is set up (PASV);
  # curl sends TYPE I only after PASV, so without -Q 'TYPE I' it gets ASCII mode and
  # "\n" silently becomes "\r\n" (gfal2 and Python's ftplib send TYPE I first: fine)
  local c=(curl -sS -m 20 --ftp-method nocwd --disable-epsv -Q 'TYPE I')
  "${c[@]}" -T "$w/in" "$url" 2>"$w/err" || { echo "$label down  (FTP STOR failed: $(head -n 1 "$w/err"))"; return 1; }
  if ! { "${c[@]}" -o "$w/out" "$url" 2>"$w/err" && cmp -s "$w/in" "$w/out"; }; then
    echo "$label down  (FTP RETR failed or differs: $(head -n 1 "$w/err"))"; return 1
  fi
  rm -f "$D/data/.bk-check.txt"
  echo "$label up    (anonymous FTP STOR/RETR round trip ok with curl, binary-exact)"
}

case "${1:-start}" in
  start)  start ;;
  stop)   stop_pidfile globus-gridftp-server "$PIDF" ;;
  status) alive "$PIDF" && answers ;;
  check)  check ;;
  env)   # only when it answers
    if ! { alive "$PIDF" && answers; }; then exit 1; fi
    echo "BATCHKIT_TEST_GRIDFTP_URL=ftp://127.0.0.1:$PORT"
    echo "BATCHKIT_TEST_GRIDFTP_DATA=$D/data"
    ;;
  *) echo "usage: $0 [start|stop|status|check|env]" >&2; exit 2 ;;
esac
