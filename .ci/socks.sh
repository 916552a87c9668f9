#!/usr/bin/env bash
# Throwaway, loopback-only SOCKS5 proxy (Dante) for the smtptls --proxy
# interoperability tests.
#
#   eval "$(.ci/socks.sh start)"   # as root; prints `export ...` lines
#   cargo test --test postfix -- --ignored --nocapture
#   .ci/socks.sh stop
#
# Commands:
#   start   install dante-server with apt if missing, write a private
#           configuration in a `mktemp -d` directory and start a private
#           `danted -f DIR/danted.conf` (as root; it drops to `nobody` for
#           the client side) on a free port of 127.0.0.1. Waits (bounded)
#           until the proxy answers a SOCKS5 greeting, then prints on stdout:
#             export SMTPTLS_SOCKS_PORT=...   the proxy's port on 127.0.0.1
#             export SMTPTLS_SOCKS_LOG=...    Dante's log file
#           Everything else goes to stderr. A previous instance started from
#           this checkout is stopped first, so running `start` twice is safe.
#   stop    stop the instance by its pid, make sure none of its processes is
#           left, and delete its directory. No-op if none.
#   status  say whether the recorded instance is running.
#   log     print Dante's log.
#
# SMTPTLS_SOCKS_TIMEOUT (default 30) bounds the wait for the proxy, in s.
#
# The proxy can only be used from and towards loopback: it listens on
# 127.0.0.1, connects out from 127.0.0.1 (`external: 127.0.0.1`), accepts
# clients from 127.0.0.0/8 only and CONNECT requests to 127.0.0.0/8 only
# (a name, as socks5h sends, is resolved by Dante and must resolve there
# too); everything else is blocked and logged. No authentication
# (`socksmethod: none`): RFC 1929 username/password is tested against the
# in-process fake proxy of tests/proxy.rs instead, since Dante checks user
# names against the system's password database.
#
# The distro's own danted (the Debian package's service, /etc/danted.conf)
# is left alone if it was running before, and stopped if apt started it
# while installing the package here; ours shares no file or port with it.
set -euo pipefail

readonly MARKER=.smtptls-socks-instance
readonly WAIT_TIMEOUT=${SMTPTLS_SOCKS_TIMEOUT:-30}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Records which instance this checkout started; outside the work tree so that
# it leaves nothing there (one per checkout, by the checkout's path).
state_file="${TMPDIR:-/tmp}/smtptls-socks-instance.$(printf '%s' "$here" | cksum | cut -d' ' -f1)"

export PATH="$PATH:/usr/sbin:/sbin"

log() { printf 'socks.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
}

# --- installation -----------------------------------------------------------

# PID of the distro's danted if one runs (its pid file), or fail.
default_danted_pid() {
    local pid
    for file in /run/danted.pid /var/run/danted.pid; do
        [[ -r $file ]] || continue
        read -r pid <"$file" || continue
        [[ $pid =~ ^[0-9]+$ ]] || continue
        [[ $(ps -o comm= -p "$pid" 2>/dev/null) == danted ]] || continue
        echo "$pid"
        return 0
    done
    return 1
}

# apt may start the distro's danted when it installs dante-server (not in
# containers whose policy-rc.d forbids it). Ours does not need it: stop it.
stop_default_danted() {
    local pid
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
        if systemctl is-active --quiet danted.service 2>/dev/null; then
            log "stopping the distro's danted that apt started (systemctl)"
            systemctl stop danted.service >&2 2>/dev/null || true
        fi
    fi
    pid=$(default_danted_pid) || return 0
    log "stopping the distro's danted that apt started (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
}

ensure_installed() {
    command -v danted >/dev/null 2>&1 && return 0
    [[ $(id -u) == 0 ]] || die "danted missing and not root: install dante-server with apt-get (as root)"
    command -v apt-get >/dev/null 2>&1 || die "danted missing and no apt-get to install dante-server"
    local was_running=
    default_danted_pid >/dev/null && was_running=1
    log "installing dante-server with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 dante-server >&2
    command -v danted >/dev/null 2>&1 || die "danted still not found after apt-get install dante-server"
    [[ -n $was_running ]] || stop_default_danted
}

# --- helpers ----------------------------------------------------------------

# Print a TCP port on 127.0.0.1 that is free right now.
pick_port() {
    local p i
    if command -v python3 >/dev/null 2>&1; then
        p=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' 2>/dev/null) || p=
        if [[ $p =~ ^[0-9]+$ ]]; then
            echo "$p"
            return 0
        fi
    fi
    for ((i = 0; i < 100; i++)); do
        p=$((20000 + RANDOM % 30000))
        # Connection refused => nothing listens there (on 127.0.0.1 or 0.0.0.0).
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    die "could not find a free port on 127.0.0.1"
}

# Succeed when 127.0.0.1:$1 answers a SOCKS5 greeting (no authentication)
# with "version 5, method 0".
socks_answers() { # PORT
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf '\005\001\000' >&3 || exit 1
        reply=$(timeout 5 head -c 2 <&3 | od -An -tx1 | tr -d ' \n') || exit 1
        [[ $reply == 0500 ]]
    ) 2>/dev/null
}

# PID of the live danted of DIR (its pid file), or fail.
instance_pid() { # DIR
    local pid
    [[ -r $1/danted.pid ]] || return 1
    read -r pid <"$1/danted.pid" || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    # A stale pid file may name a reused pid: only a live danted counts.
    [[ $(ps -o comm= -p "$pid" 2>/dev/null) == danted ]] || return 1
    echo "$pid"
}

print_env() { # DIR
    printf 'export SMTPTLS_SOCKS_PORT=%q\n' "$(cat "$1/port")"
    printf 'export SMTPTLS_SOCKS_LOG=%q\n' "$1/danted.log"
}

write_conf() { # DIR PORT
    local dir=$1 port=$2
    cat >"$dir/danted.conf" <<EOF
# Generated by .ci/socks.sh: throwaway SOCKS5 proxy for the smtptls tests.
logoutput: $dir/danted.log
internal: 127.0.0.1 port = $port
external: 127.0.0.1
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody

# Clients from loopback only.
client pass {
    from: 127.0.0.0/8 to: 0.0.0.0/0
    log: error connect disconnect
}
client block {
    from: 0.0.0.0/0 to: 0.0.0.0/0
    log: connect error
}

# CONNECT to loopback only (a host name is resolved by Dante first).
socks pass {
    from: 127.0.0.0/8 to: 127.0.0.0/8
    command: connect
    log: error connect disconnect
}
socks block {
    from: 0.0.0.0/0 to: 0.0.0.0/0
    log: connect error
}
EOF
}

# --- start / stop -------------------------------------------------------------

starting_dir=

on_start_exit() {
    local rc=$?
    set +e
    trap '' PIPE
    if [[ $rc != 0 && -n $starting_dir ]]; then
        if [[ -s $starting_dir/danted.log ]]; then
            log "last lines of Dante's log:"
            tail -n 20 "$starting_dir/danted.log" >&2 || true
        fi
        stop_instance "$starting_dir" || true
        rm -f "$state_file"
    fi
    exit "$rc"
}

# One attempt: start danted on PORT, wait until it answers.
try_start() { # DIR PORT
    local dir=$1 port=$2 deadline
    write_conf "$dir" "$port"
    echo "$port" >"$dir/port"
    # -D: detach; -p: our own pid file; -N 1: one client-handling process.
    danted -D -N 1 -f "$dir/danted.conf" -p "$dir/danted.pid" >&2 || return 1
    deadline=$((SECONDS + WAIT_TIMEOUT))
    while ((SECONDS < deadline)); do
        if socks_answers "$port"; then
            log "Dante (pid $(instance_pid "$dir" || echo '?')) answers SOCKS5 on 127.0.0.1:$port"
            return 0
        fi
        sleep 0.3
    done
    log "no SOCKS5 answer on 127.0.0.1:$port within ${WAIT_TIMEOUT}s"
    return 1
}

cmd_start() {
    [[ $(id -u) == 0 ]] || die "start must run as root (danted's user.privileged is root)"
    ensure_installed
    if [[ -s $state_file ]]; then
        log "stopping the instance left by a previous start: $(cat "$state_file")"
        cmd_stop
    fi
    local dir attempt
    dir=$(mktemp -d "${TMPDIR:-/tmp}/smtptls-socks.XXXXXX")
    : >"$dir/$MARKER"
    echo "$dir" >"$state_file"
    starting_dir=$dir
    trap on_start_exit EXIT
    trap 'exit 130' INT TERM HUP PIPE
    # The unprivileged side (nobody) only needs to traverse the directory.
    chmod 755 "$dir"
    for attempt in 1 2 3; do
        if try_start "$dir" "$(pick_port)"; then
            starting_dir=
            trap - EXIT INT TERM HUP PIPE
            print_env "$dir"
            return 0
        fi
        log "attempt $attempt failed"
        kill_instance "$dir"
    done
    die "could not start Dante (log: $dir/danted.log)"
}

# Stop the danted of DIR by its pid, then any process left of its group.
kill_instance() { # DIR
    local dir=$1 pid pgid i pids
    pid=$(instance_pid "$dir") || return 0
    pgid=$(ps -o pgid= -p "$pid" | tr -d ' ') || pgid=
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do # 10 s
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "danted $pid still running after 10 s, killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    # The detached mother process leads its own process group; its children
    # (negotiate, request, io) share it.
    [[ $pgid =~ ^[0-9]+$ && $pgid == "$pid" ]] || return 0
    for ((i = 0; i < 50; i++)); do # 5 s
        pids=$(ps -eo pid=,pgid= | awk -v g="$pgid" '$2 == g { print $1 }')
        [[ -n $pids ]] || return 0
        sleep 0.1
    done
    log "killing leftover danted processes: ${pids//$'\n'/ }"
    # shellcheck disable=SC2086 # word splitting of the pid list is intended
    kill -KILL $pids 2>/dev/null || true
}

stop_instance() { # DIR
    local dir=$1
    [[ -d $dir ]] || return 0
    [[ -e $dir/$MARKER ]] || die "refusing to touch $dir: not a .ci/socks.sh instance directory"
    kill_instance "$dir"
    rm -rf -- "$dir"
    log "stopped and removed $dir"
}

cmd_stop() {
    local dir=
    [[ -s $state_file ]] && dir=$(cat "$state_file")
    if [[ -z $dir ]]; then
        log "no instance recorded; nothing to stop"
    else
        stop_instance "$dir"
    fi
    rm -f "$state_file"
}

cmd_status() {
    local dir pid
    if [[ -s $state_file ]] && dir=$(cat "$state_file") && pid=$(instance_pid "$dir"); then
        log "running: danted pid $pid on 127.0.0.1:$(cat "$dir/port"), dir $dir"
    else
        log "not running"
        return 1
    fi
}

cmd_log() {
    [[ -s $state_file ]] || die "no instance recorded"
    cat "$(cat "$state_file")/danted.log"
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
log) cmd_log ;;
-h | --help | help) usage ;;
*)
    usage
    exit 2
    ;;
esac
