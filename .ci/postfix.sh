#!/usr/bin/env bash
# Throwaway, loopback-only Postfix for the smtptls interoperability test.
#
#   eval "$(.ci/postfix.sh start)"   # as root; prints `export ...` lines
#   cargo test --test postfix -- --ignored --nocapture
#   .ci/postfix.sh stop
#
# Commands:
#   start   install Postfix (+ openssl) with apt if missing, generate a fresh
#           self-signed certificate for mx.smtptls.test, and start a private
#           Postfix instance (own config, queue and data directories under a
#           `mktemp -d` directory) listening on two free ports on 127.0.0.1
#           only. Waits (bounded) for the 220 banner, then prints on stdout:
#             export SMTPTLS_POSTFIX_PORT=...   SMTP port offering STARTTLS
#             export SMTPTLS_POSTFIX_SMTPS_PORT=...  implicit TLS (like 465)
#             export SMTPTLS_POSTFIX_CERT=...   PEM of the certificate served
#             export SMTPTLS_POSTFIX_DIR=...    the instance directory
#           Everything else goes to stderr. A previous instance started from
#           this checkout is stopped first, so running `start` twice is safe.
#   stop [DIR]  stop the instance (DIR, else the one recorded for this
#           checkout, else $SMTPTLS_POSTFIX_DIR), make sure none of its
#           processes is left, and delete its directory. No-op if none.
#   status  say whether the recorded instance is running.
#   env     print the export lines of the running instance again.
#   log     print the instance's mail log (postlog, no syslog needed).
#
# SMTPTLS_POSTFIX_TIMEOUT (default 30) bounds the wait for the banner, in s.
#
# The instance can only talk to loopback: it listens on 127.0.0.1, has no
# DNS lookups (no reverse lookup of clients), no local delivery and no
# outbound SMTP (every transport is `error:`), and no smtp/lmtp/local
# services in master.cf at all. The distro's default Postfix instance, if
# any, is left alone (different port, directories and config).
set -euo pipefail

readonly SERVER_NAME=mx.smtptls.test
readonly MARKER=.smtptls-postfix-instance
readonly BANNER_TIMEOUT=${SMTPTLS_POSTFIX_TIMEOUT:-30}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Records which instance this checkout started (ignored by git, see .ci/.gitignore).
state_file="$here/.postfix-instance"

export PATH="$PATH:/usr/sbin:/sbin"

log() { printf 'postfix.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
}

# --- installation -----------------------------------------------------------

ensure_installed() {
    if command -v postfix >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1; then
        return 0
    fi
    [[ $(id -u) == 0 ]] || die "postfix/openssl missing and not root: install them with apt-get (as root)"
    command -v apt-get >/dev/null 2>&1 || die "postfix/openssl missing and no apt-get to install them"
    local had_postfix=no
    command -v postfix >/dev/null 2>&1 && had_postfix=yes
    log "installing postfix and openssl with apt-get"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 postfix openssl >&2
    command -v postfix >/dev/null 2>&1 || die "postfix still not found after apt-get install"
    # "No configuration" means Debian does not start a default instance; if a
    # package script started one anyway, stop what we just brought up.
    if [[ $had_postfix == no ]] && postfix status >/dev/null 2>&1; then
        log "stopping the distro's default Postfix instance that apt started"
        postfix stop >&2 || true
    fi
}

# --- helpers ----------------------------------------------------------------

# Print a TCP port on 127.0.0.1 that is free right now.
pick_port() {
    local p
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
    local i
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

# Succeed when 127.0.0.1:$1 answers with an SMTP 220 greeting.
smtp_banner() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        IFS= read -r -t 5 line <&3 || exit 1
        printf 'QUIT\r\n' >&3 || true
        [[ $line == 220* ]] || exit 1
        printf '%s\n' "${line%$'\r'}"
    ) 2>/dev/null
}

master_pid() { # DIR -> pid of a live master, or fail
    local pidfile="$1/queue/pid/master.pid" pid
    [[ -r $pidfile ]] || return 1
    read -r pid <"$pidfile" || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    # A stale pid file may name a reused pid: only a live "master" counts.
    [[ $(ps -o comm= -p "$pid" 2>/dev/null) == master ]] || return 1
    echo "$pid"
}

# PIDs of processes in session $1 (the master calls setsid(), so its session
# holds exactly the instance's processes).
session_pids() {
    ps -eo pid=,sid= | awk -v sid="$1" '$2 == sid { print $1 }'
}

print_env() { # DIR
    local dir=$1
    printf 'export SMTPTLS_POSTFIX_PORT=%q\n' "$(cat "$dir/port")"
    printf 'export SMTPTLS_POSTFIX_SMTPS_PORT=%q\n' "$(cat "$dir/smtps-port")"
    printf 'export SMTPTLS_POSTFIX_CERT=%q\n' "$dir/tls/cert.pem"
    printf 'export SMTPTLS_POSTFIX_DIR=%q\n' "$dir"
}

# --- configuration ------------------------------------------------------------

write_main_cf() { # DIR
    local dir=$1 protocols=ipv4 networks=127.0.0.0/8
    # Use IPv6 too only if the loopback interface has ::1.
    if grep -qs '^0\{31\}1 ' /proc/net/if_inet6; then
        protocols=all
        networks="127.0.0.0/8 [::1]/128"
    fi
    cat >"$dir/conf/main.cf" <<EOF
# Generated by .ci/postfix.sh: throwaway smtptls test instance.
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
myhostname = $SERVER_NAME
mydomain = smtptls.test
myorigin = \$myhostname
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
mynetworks = $networks
inet_interfaces = loopback-only
inet_protocols = $protocols
smtpd_banner = \$myhostname ESMTP smtptls test instance
# Never leave loopback: no DNS, no delivery, nothing relayed.
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtpd_relay_restrictions = reject_unauth_destination
default_transport = error:outbound mail disabled (smtptls test instance)
relay_transport = error:outbound mail disabled (smtptls test instance)
local_transport = error:local delivery disabled (smtptls test instance)
virtual_transport = error:virtual delivery disabled (smtptls test instance)
biff = no
append_dot_mydomain = no
# TLS: STARTTLS offered, certificate generated at start.
smtpd_tls_security_level = may
smtpd_tls_chain_files = $dir/tls/key.pem, $dir/tls/cert.pem
smtpd_tls_loglevel = 1
EOF
}

write_master_cf() { # DIR PORT SMTPS_PORT
    cat >"$1/conf/master.cf" <<EOF
# Generated by .ci/postfix.sh. Only what an SMTP server needs; no smtp, lmtp,
# local or virtual delivery agents, so this instance cannot send mail anywhere.
# service        type  private unpriv chroot wakeup maxproc command
127.0.0.1:$2     inet  n       -      n      -      -       smtpd
127.0.0.1:$3     inet  n       -      n      -      -       smtpd
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
pickup           unix  n       -      n      60     1       pickup
cleanup          unix  n       -      n      -      0       cleanup
qmgr             unix  n       -      n      300    1       qmgr
tlsmgr           unix  -       -      n      1000?  1       tlsmgr
rewrite          unix  -       -      n      -      -       trivial-rewrite
bounce           unix  -       -      n      -      0       bounce
defer            unix  -       -      n      -      0       bounce
trace            unix  -       -      n      -      0       bounce
verify           unix  -       -      n      -      1       verify
flush            unix  n       -      n      1000?  0       flush
proxymap         unix  -       -      n      -      -       proxymap
showq            unix  n       -      n      -      -       showq
error            unix  -       -      n      -      -       error
retry            unix  -       -      n      -      -       error
discard          unix  -       -      n      -      -       discard
anvil            unix  -       -      n      -      1       anvil
scache           unix  -       -      n      -      1       scache
postlog          unix-dgram n  -      n      -      1       postlogd
EOF
}

generate_cert() { # DIR
    local tls=$1/tls
    mkdir -p "$tls"
    # CA:FALSE: webpki (rustls) rejects a certificate marked CA:TRUE when it is
    # used as the server (end-entity) certificate, which `openssl req -x509`
    # would otherwise produce by default.
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 \
        -subj "/CN=$SERVER_NAME" \
        -addext "subjectAltName=DNS:$SERVER_NAME" \
        -addext "basicConstraints=critical,CA:FALSE" \
        -addext "extendedKeyUsage=serverAuth" \
        -keyout "$tls/key.pem" -out "$tls/cert.pem" 2>/dev/null ||
        die "openssl could not generate the test certificate"
    chmod 600 "$tls/key.pem"
    chmod 644 "$tls/cert.pem"
}

# --- start / stop -------------------------------------------------------------

# The instance being started, for cleanup if `start` fails half-way.
starting_dir=

on_start_exit() {
    local rc=$?
    # Clean up whatever happens to our output (stderr may be a closed pipe).
    set +e
    trap '' PIPE
    if [[ $rc != 0 && -n $starting_dir ]]; then
        if [[ -s $starting_dir/maillog ]]; then
            log "last lines of the Postfix log:"
            tail -n 20 "$starting_dir/maillog" >&2 || true
        fi
        stop_instance "$starting_dir" || true
        rm -f "$state_file"
    fi
    exit "$rc"
}

# One attempt: start the configured instance, wait for the banner on PORT.
try_start() { # DIR PORT
    local dir=$1 port=$2 deadline banner
    postfix -c "$dir/conf" check >&2 || return 1
    postfix -c "$dir/conf" start >&2 || return 1
    deadline=$((SECONDS + BANNER_TIMEOUT))
    while ((SECONDS < deadline)); do
        if banner=$(smtp_banner "$port"); then
            # The master binds every listener before it serves any.
            log "listening on 127.0.0.1:$port (STARTTLS): $banner"
            log "listening on 127.0.0.1:$(cat "$dir/smtps-port") (implicit TLS)"
            return 0
        fi
        master_pid "$dir" >/dev/null || sleep 1 # master may still be starting
        master_pid "$dir" >/dev/null || {
            log "the Postfix master process exited"
            return 1
        }
        sleep 0.3
    done
    log "no 220 banner on 127.0.0.1:$port within ${BANNER_TIMEOUT}s"
    return 1
}

cmd_start() {
    [[ $(id -u) == 0 ]] || die "start must run as root (the Postfix master needs it)"
    ensure_installed
    if [[ -s $state_file ]]; then
        log "stopping the instance left by a previous start: $(cat "$state_file")"
        cmd_stop
    fi

    local dir attempt port smtps_port log_lines
    dir=$(mktemp -d "${TMPDIR:-/tmp}/smtptls-postfix.XXXXXX")
    : >"$dir/$MARKER"
    # Record it at once, so that `stop` finds it even if this script dies
    # before the end (killed, SIGPIPE on a closed stderr, ...).
    echo "$dir" >"$state_file"
    starting_dir=$dir
    trap on_start_exit EXIT
    trap 'exit 130' INT TERM HUP PIPE # run the EXIT trap on these too
    # Daemons drop to the postfix user; let them traverse to their files.
    chmod 755 "$dir"
    mkdir -p "$dir/conf" "$dir/queue" "$dir/data"
    generate_cert "$dir"
    write_main_cf "$dir"

    for attempt in 1 2 3; do
        log_lines=0
        [[ -f $dir/maillog ]] && log_lines=$(wc -l <"$dir/maillog")
        port=$(pick_port)
        smtps_port=$port
        while [[ $smtps_port == "$port" ]]; do smtps_port=$(pick_port); done
        write_master_cf "$dir" "$port" "$smtps_port"
        echo "$port" >"$dir/port"
        echo "$smtps_port" >"$dir/smtps-port"
        if [[ $attempt == 1 ]]; then
            # Create the queue and data directories with Postfix's own
            # ownership and modes (queue subdirectories owned by postfix,
            # public/ and maildrop/ by postdrop, ...).
            postfix -c "$dir/conf" set-permissions >&2 ||
                die "postfix set-permissions failed"
        fi
        if try_start "$dir" "$port"; then
            starting_dir=
            trap - EXIT INT TERM HUP PIPE
            print_env "$dir"
            return 0
        fi
        log "attempt $attempt on ports $port and $smtps_port failed:"
        tail -n "+$((log_lines + 1))" "$dir/maillog" 2>/dev/null | grep -E 'fatal|panic|error' >&2 || true
        kill_instance_processes "$dir"
    done
    die "could not start Postfix (log: $dir/maillog)"
}

# Stop the master of DIR and every process of its session.
kill_instance_processes() { # DIR
    local dir=$1 pid sid i pids
    pid=$(master_pid "$dir") || pid=
    [[ -n $pid ]] || return 0
    sid=$(ps -o sid= -p "$pid" | tr -d ' ') || sid=
    postfix -c "$dir/conf" stop >&2 || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do # 10 s
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "master $pid still running after 10 s, killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    # The master signals its children on exit; give them a moment, then make
    # sure no process of the instance's session is left.
    [[ $sid =~ ^[0-9]+$ && $sid == "$pid" ]] || return 0
    for ((i = 0; i < 50; i++)); do # 5 s
        pids=$(session_pids "$sid")
        [[ -n $pids ]] || return 0
        sleep 0.1
    done
    log "killing leftover Postfix processes: ${pids//$'\n'/ }"
    # shellcheck disable=SC2086 # word splitting of the pid list is intended
    kill -KILL $pids 2>/dev/null || true
}

stop_instance() { # DIR
    local dir=$1
    [[ -d $dir ]] || return 0
    [[ -e $dir/$MARKER ]] || die "refusing to touch $dir: not a .ci/postfix.sh instance directory"
    kill_instance_processes "$dir"
    rm -rf -- "$dir"
    log "stopped and removed $dir"
}

cmd_stop() {
    local dir=${1:-}
    if [[ -z $dir && -s $state_file ]]; then
        dir=$(cat "$state_file")
    fi
    dir=${dir:-${SMTPTLS_POSTFIX_DIR:-}}
    if [[ -z $dir ]]; then
        log "no instance recorded; nothing to stop"
    else
        stop_instance "$dir"
    fi
    # Forget the recorded instance once it is gone (or if it was this one).
    if [[ -e $state_file ]] && { [[ -z $dir ]] || [[ $(cat "$state_file") == "$dir" ]]; }; then
        rm -f "$state_file"
    fi
}

recorded_dir() {
    [[ -s $state_file ]] && cat "$state_file"
}

cmd_status() {
    local dir pid
    if dir=$(recorded_dir) && pid=$(master_pid "$dir"); then
        log "running: master pid $pid, ports $(cat "$dir/port") (STARTTLS) and $(cat "$dir/smtps-port") (implicit TLS), dir $dir"
    else
        log "not running"
        return 1
    fi
}

cmd_env() {
    local dir
    if ! dir=$(recorded_dir) || ! master_pid "$dir" >/dev/null; then
        die "no running instance (use: $0 start)"
    fi
    print_env "$dir"
}

cmd_log() {
    local dir
    dir=$(recorded_dir) || die "no instance recorded"
    cat "$dir/maillog"
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop "${2:-}" ;;
status) cmd_status ;;
env) cmd_env ;;
log) cmd_log ;;
-h | --help | help) usage ;;
*)
    usage
    exit 2
    ;;
esac
