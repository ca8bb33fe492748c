#!/bin/sh
# batchkit job wrapper: the same script for every backend (local, Slurm, HTCondor, ...).
#
#   usage: sh wrapper.sh BATCH_DIR ROW
#
# BATCH_DIR holds this script and table/<ROW/256>.sh, which defines what row ROW runs: its
# index and attempt, environment, stage-in, command and stage-out, all quoted by batchkit
# (shlex.quote), so arguments with quotes, spaces, $, backticks or newlines arrive verbatim.
#
# It writes, under $BATCHKIT_STATE_DIR (default: BATCH_DIR):
#   logs/<index>.out, logs/<index>.err   the job's stdout/stderr (and this script's messages)
#   markers/<index>.start                "start=<epoch> host=... pid=... attempt=..."
#   markers/<index>.exit                 exit=<code> end=<epoch> step=<step> reason=<text>
# Both markers are written atomically (temporary name, then rename), so a reader never sees
# half a marker. The exit marker is the job-side truth that outlives the scheduler's memory.
#
# Exit codes: the command's own exit code, 128+N when killed by signal N, or
#   241 stage-in failed   243 stage-out failed   244 setup script or environment failed
#   245 wrapper error (row not found, working directory unusable)

# Prefer bash when the node has it: users' setup scripts are usually bash.
if [ -z "${BASH_VERSION:-}" ] && [ -z "${BATCHKIT_NO_BASH:-}" ] && command -v bash >/dev/null 2>&1; then
    exec bash "$0" "$@"
fi
set -u

BK_DIR=$1
BK_ROW=$2
BK_STATE_DIR=${BATCHKIT_STATE_DIR:-$BK_DIR}
bk_found=0
bk_child=
bk_watchdog=
bk_step=wrapper
bk_reason=
BK_WORK=

bk_now() { date +%s; }
bk_log() { printf '[batchkit %s] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
bk_oneline() { printf '%s' "$*" | tr '\n\r\t' '   '; }

# bk_marker NAME CONTENT: write markers/<index>.NAME atomically; never fails the job.
bk_marker() {
    bk_m="$BK_STATE_DIR/markers/$BATCHKIT_INDEX.$1"
    { printf '%s\n' "$2" > "$bk_m.tmp.$$" && mv -f "$bk_m.tmp.$$" "$bk_m"; } 2>/dev/null || true
}

bk_finish() {  # bk_finish CODE: stage out is done (or skipped); write the exit marker, leave.
    bk_code=$1
    trap - TERM INT HUP
    [ -n "$bk_watchdog" ] && kill "$bk_watchdog" 2>/dev/null
    rm -f "${BK_QUEUE_IN:-}" "${BK_QUEUE_OUT:-}" 2>/dev/null
    if [ -n "$BK_WORK" ] && [ -z "${BATCHKIT_KEEP_SCRATCH:-}" ]; then
        cd / && rm -rf "$BK_WORK"
    fi
    bk_marker exit "exit=$bk_code end=$(bk_now) step=$bk_step reason=$(bk_oneline "$bk_reason")"
    [ -n "$bk_reason" ] && bk_log "$bk_reason"
    bk_log "exit code $bk_code"
    exit "$bk_code"
}

bk_on_signal() {  # forwarded to the command; the job ends as killed by that signal
    bk_sig=$1
    case $bk_sig in TERM) bk_num=15 ;; INT) bk_num=2 ;; HUP) bk_num=1 ;; *) bk_num=15 ;; esac
    trap - TERM INT HUP
    if [ -n "$bk_child" ]; then
        kill "-$bk_sig" "$bk_child" 2>/dev/null
        wait "$bk_child" 2>/dev/null
    fi
    bk_reason="killed by SIG$bk_sig"
    [ -f "$BK_STATE_DIR/markers/$BATCHKIT_INDEX.walltime" ] && bk_reason="walltime exceeded (killed by SIG$bk_sig)"
    bk_finish $((128 + bk_num))
}

# --- called from the table -------------------------------------------------------------
bk_row() {  # bk_row INDEX ATTEMPT NAME CWD SCRATCH WALLTIME
    BATCHKIT_INDEX=$1
    BATCHKIT_ATTEMPT=$2
    BATCHKIT_JOB_NAME=$3
    BK_CWD=$4
    BK_SCRATCH=$5
    BK_WALLTIME=$6
    bk_found=1
}

bk_copy() {  # bk_copy SRC DST: local copy that never leaves a half-written DST
    bk_tmp="$2.batchkit-part.$$"
    mkdir -p "$(dirname "$2")" && cp -R "$1" "$bk_tmp" && mv -f "$bk_tmp" "$2" && return 0
    rm -rf "$bk_tmp" 2>/dev/null
    return 1
}

bk_transfer() {  # remote URLs go through batchkit's own transfer layer
    "${BATCHKIT_PYTHON:-python3}" -m batchkit cp "$@"
}

# Remote files are not copied one process at a time: bk_get/bk_put queue them as
# "SRC<TAB>DST" lines and bk_flush moves the whole queue with one `batchkit cp --pairs`
# (one Python start, the protocol's bulk path). Names with a tab or newline cannot be
# queued and are copied on their own.
bk_tab=$(printf '\t')
bk_nl='
'
bk_queue() {  # bk_queue QUEUE SRC DST
    case "$2$3" in
        *"$bk_tab"*|*"$bk_nl"*) bk_transfer -- "$2" "$3" ;;
        *) printf '%s\t%s\n' "$2" "$3" >> "$1" ;;
    esac
}

bk_flush() {  # bk_flush QUEUE WHAT: copy what was queued, in one process
    [ -s "$1" ] || return 0
    bk_log "$2: copying $(wc -l < "$1" | tr -d ' ') remote file(s) in one call"
    bk_transfer --pairs "$1" || { bk_reason="$2 of remote files failed (see the log for which)"; return 1; }
    rm -f "$1"
}

bk_get() {  # bk_get SOURCE NAME
    bk_log "stage-in $1 -> $2"
    case $1 in
        file://*) bk_copy "${1#file://}" "$2" ;;
        *://*) mkdir -p "$(dirname "$2")" && bk_queue "$BK_QUEUE_IN" "$1" "$2" ;;
        *) bk_copy "$1" "$2" ;;
    esac || { bk_reason="stage-in of $2 from $1 failed"; return 1; }
}

bk_put() {  # bk_put NAME DESTINATION
    if [ ! -e "$1" ]; then
        bk_reason="output $1 was not produced"
        return 1
    fi
    bk_log "stage-out $1 -> $2"
    case $2 in
        file://*) bk_copy "$1" "${2#file://}" ;;
        *://*) if [ -d "$1" ]; then bk_transfer -r -- "$1" "$2"; else bk_queue "$BK_QUEUE_OUT" "$1" "$2"; fi ;;
        *) bk_copy "$1" "$2" ;;
    esac || { bk_reason="stage-out of $1 to $2 failed"; return 1; }
}

# bk_exec ARGV...: how a command is executed; a table may redefine it to add a prefix
# (e.g. `apptainer exec IMAGE`). It runs in the background subshell and replaces it.
bk_exec() { exec "$@"; }

bk_run() {  # bk_run ARGV...: start the command as a direct child, remember its pid
    bk_exec "$@" </dev/null &
    bk_child=$!
}

bk_lock_owner_gone() {  # the pid recorded in a lock directory is not running on this host
    bk_owner=$(cat "$1/owner" 2>/dev/null) || return 1
    [ "${bk_owner%% *}" = "$(hostname 2>/dev/null || uname -n)" ] || return 1
    ! kill -0 "${bk_owner##* }" 2>/dev/null
}

bk_unpack_env() {  # unpack $BK_ENV_TARBALL once per node, then activate it
    bk_cache=${BATCHKIT_ENV_CACHE:-${TMPDIR:-/tmp}/batchkit-env-$(id -u)}
    bk_target="$bk_cache/$BK_ENV_DIGEST"
    mkdir -p "$bk_cache" || return 1
    bk_waited=0
    while [ ! -f "$bk_target/.batchkit-complete" ]; do
        if mkdir "$bk_target.lock" 2>/dev/null; then
            echo "$(hostname 2>/dev/null || uname -n) $$" > "$bk_target.lock/owner"
            bk_log "unpacking environment $BK_ENV_TARBALL into $bk_target"
            rm -rf "$bk_target" "$bk_target.part"
            mkdir -p "$bk_target.part"
            case $BK_ENV_TARBALL in
                *://*) bk_archive="$bk_target.part.archive"
                       bk_transfer "$BK_ENV_TARBALL" "$bk_archive" || { rm -rf "$bk_target.part" "$bk_target.lock"; return 1; } ;;
                *) bk_archive=$BK_ENV_TARBALL ;;
            esac
            if ! tar -xf "$bk_archive" -C "$bk_target.part"; then
                rm -rf "$bk_target.part" "$bk_target.part.archive" "$bk_target.lock"
                return 1
            fi
            rm -f "$bk_target.part.archive"
            mv "$bk_target.part" "$bk_target" || { rm -rf "$bk_target.lock"; return 1; }
            if [ -x "$bk_target/bin/conda-unpack" ]; then
                (cd "$bk_target" && ./bin/conda-unpack) || { rm -rf "$bk_target" "$bk_target.lock"; return 1; }
            fi
            : > "$bk_target/.batchkit-complete"
            rm -rf "$bk_target.lock"
        elif bk_lock_owner_gone "$bk_target.lock"; then
            bk_log "removing the stale lock of a job that died while unpacking"
            rm -rf "$bk_target.lock"
        else
            sleep 1
            bk_waited=$((bk_waited + 1))
            [ "$bk_waited" -lt "${BATCHKIT_ENV_WAIT:-3600}" ] || return 1
        fi
    done
    if [ -f "$bk_target/bin/activate" ]; then
        # shellcheck disable=SC1091
        . "$bk_target/bin/activate"
    else
        PATH="$bk_target/bin:$PATH"
        export PATH
    fi
    BATCHKIT_ENV_DIR=$bk_target
    export BATCHKIT_ENV_DIR
}

# A row defines these only when it has environment variables, inputs or outputs.
bk_env() { :; }
bk_stagein() { :; }
bk_stageout() { :; }

# --- load the row ------------------------------------------------------------------------
BK_TABLE="$BK_DIR/table/$((BK_ROW / 256)).sh"
if [ -r "$BK_TABLE" ]; then
    . "$BK_TABLE"
fi
if [ "$bk_found" != 1 ]; then
    echo "batchkit wrapper: row $BK_ROW not found in $BK_TABLE" >&2
    exit 245
fi
export BATCHKIT_INDEX BATCHKIT_ATTEMPT BATCHKIT_JOB_NAME
BATCHKIT_BATCH_DIR=$BK_DIR
export BATCHKIT_BATCH_DIR

mkdir -p "$BK_STATE_DIR/logs" "$BK_STATE_DIR/markers" 2>/dev/null
BK_OUT="$BK_STATE_DIR/logs/$BATCHKIT_INDEX.out"
BK_ERR="$BK_STATE_DIR/logs/$BATCHKIT_INDEX.err"
# Without a writable log directory (no shared file system) output goes to the scheduler's files.
if { : >>"$BK_OUT" && : >>"$BK_ERR"; } 2>/dev/null; then
    exec >>"$BK_OUT" 2>>"$BK_ERR"
fi
trap 'bk_on_signal TERM' TERM
trap 'bk_on_signal INT' INT
trap 'bk_on_signal HUP' HUP

bk_marker start "start=$(bk_now) host=$(hostname 2>/dev/null || uname -n) pid=$$ attempt=$BATCHKIT_ATTEMPT"
bk_log "job $BATCHKIT_INDEX attempt $BATCHKIT_ATTEMPT on $(hostname 2>/dev/null || uname -n), batch $BK_DIR row $BK_ROW"

# --- working directory -------------------------------------------------------------------
if [ "$BK_SCRATCH" = 1 ]; then
    BK_WORK=$(mktemp -d "${BATCHKIT_SCRATCH_ROOT:-${TMPDIR:-/tmp}}/batchkit.XXXXXXXX") || {
        bk_reason="cannot create a scratch directory"; bk_finish 245; }
    cd "$BK_WORK" || { bk_reason="cannot enter $BK_WORK"; bk_finish 245; }
else
    cd "$BK_CWD" || { bk_reason="cannot enter working directory $BK_CWD"; bk_finish 245; }
fi
BATCHKIT_WORK_DIR=$(pwd)
export BATCHKIT_WORK_DIR

# --- environment: the batch's setup script, then the job's own variables -----------------
if [ -f "$BK_DIR/setup.sh" ]; then
    bk_step=setup
    bk_log "sourcing $BK_DIR/setup.sh"
    # shellcheck disable=SC1091
    . "$BK_DIR/setup.sh" || { bk_reason="setup script $BK_DIR/setup.sh failed"; bk_finish 244; }
fi
if [ -n "${BK_ENV_TARBALL:-}" ]; then
    bk_step=environment
    bk_unpack_env || { bk_reason="cannot unpack the environment $BK_ENV_TARBALL"; bk_finish 244; }
fi
bk_env

# --- stage-in, command, stage-out --------------------------------------------------------
BK_QUEUE_IN=${BK_WORK:-${TMPDIR:-/tmp}}/.batchkit-stagein.$$
BK_QUEUE_OUT=${BK_WORK:-${TMPDIR:-/tmp}}/.batchkit-stageout.$$
rm -f "$BK_QUEUE_IN" "$BK_QUEUE_OUT"
bk_step=stagein
{ bk_stagein && bk_flush "$BK_QUEUE_IN" stage-in; } || { rm -f "$BK_QUEUE_IN"; bk_finish 241; }

bk_step=command
bk_command
if [ -n "$BK_WALLTIME" ]; then
    # Watchdog for backends without a scheduler-enforced time limit (the local backend).
    # It does not hold fd 9 (the local backend's slot lock), so a lingering sleep never
    # blocks a slot.
    (
        bk_n=0
        while [ "$bk_n" -lt "$BK_WALLTIME" ]; do sleep 1; bk_n=$((bk_n + 1)); done
        : > "$BK_STATE_DIR/markers/$BATCHKIT_INDEX.walltime"
        kill -TERM "$bk_child" 2>/dev/null
        sleep 5
        kill -KILL "$bk_child" 2>/dev/null
    ) 9>&- </dev/null >/dev/null 2>&1 &
    bk_watchdog=$!
fi
wait "$bk_child"
bk_rc=$?
bk_child=
if [ -f "$BK_STATE_DIR/markers/$BATCHKIT_INDEX.walltime" ]; then
    bk_reason="walltime of ${BK_WALLTIME} s exceeded"
    bk_finish "$bk_rc"
fi
if [ "$bk_rc" -ne 0 ]; then
    [ "$bk_rc" -eq 127 ] && bk_reason="command not found (exit code 127)"
    bk_finish "$bk_rc"
fi

bk_step=stageout
{ bk_stageout && bk_flush "$BK_QUEUE_OUT" stage-out; } || { rm -f "$BK_QUEUE_OUT"; bk_finish 243; }
bk_step=done
bk_finish 0
