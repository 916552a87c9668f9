#!/usr/bin/env bash
# Throwaway, loopback-only Postfix for the smtptls interoperability test.
#
#   eval "$(.ci/postfix.sh start)"   # as root; prints `export ...` lines
#   cargo test --test postfix -- --ignored --nocapture
#   .ci/postfix.sh stop
#
# Commands:
#   start   install Postfix, Dovecot (dovecot-core, for SASL) and openssl
#           with apt if missing, generate a fresh self-signed certificate for
#           mx.smtptls.test and a test user with a random password, and start
#           a private Dovecot (auth only: no IMAP/POP3, no network listener)
#           and a private Postfix instance (own config, queue and data
#           directories under one `mktemp -d` directory) listening on two free
#           ports on 127.0.0.1 only. Waits (bounded) for the 220 banner and for
#           AUTH inside TLS, then prints on stdout:
#             export SMTPTLS_POSTFIX_PORT=...   SMTP port offering STARTTLS
#             export SMTPTLS_POSTFIX_SMTPS_PORT=...  implicit TLS (like 465)
#             export SMTPTLS_POSTFIX_CERT=...   PEM of the certificate served
#             export SMTPTLS_POSTFIX_DIR=...    the instance directory
#             export SMTPTLS_POSTFIX_USER=...   SASL user (probe@smtptls.test)
#             export SMTPTLS_POSTFIX_PASSWORD=...  its password, new each run
#           Everything else goes to stderr. A previous instance started from
#           this checkout is stopped first, so running `start` twice is safe.
#   stop [DIR]  stop the instance (DIR, else the one recorded for this
#           checkout, else $SMTPTLS_POSTFIX_DIR) and its Dovecot, make sure
#           none of their processes is left, and delete its directory. No-op
#           if none.
#   status  say whether the recorded instance is running.
#   env     print the export lines of the running instance again.
#   log     print the instance's mail log (postlog, no syslog needed), then
#           Dovecot's log.
#
# SMTPTLS_POSTFIX_TIMEOUT (default 30) bounds the wait for the banner, in s.
#
# The instance can only talk to loopback: it listens on 127.0.0.1, has no
# DNS lookups (no reverse lookup of clients), no local delivery and no
# outbound SMTP (every transport is `error:`, but `discard:` for the test
# domain, see below), and no smtp/lmtp/local/virtual services in master.cf
# at all. The distro's default Postfix instance, if
# any, is left alone (different port, directories and config).
#
# SMTP AUTH (PLAIN, LOGIN) is offered only inside TLS (smtpd_tls_auth_only),
# backed by Dovecot SASL: a private `dovecot -c DIR/dovecot/dovecot.conf`
# with `protocols =` empty (the auth service only), its base_dir, state_dir
# and log under DIR, a passwd-file with the one test user, and its auth
# socket at DIR/queue/private/dovecot-auth (smtpd_sasl_path, relative to the
# queue directory). A system Dovecot, if any, is left alone (its own
# base_dir, no shared socket or port); one that apt starts while installing
# dovecot-core here is stopped again.
#
# Recipients: smtptls.test is a virtual mailbox domain whose only addresses
# are probe@ and postmaster@ (a texthash: map); other addresses there are
# refused at RCPT (550 user unknown) and every other domain is refused as
# relaying (554), authenticated or not. Mail to the accepted ones would be
# discarded (virtual_transport = discard:, since smtpd refuses at RCPT any
# recipient whose transport is error:), but smtptls never sends DATA, so
# nothing is ever queued, let alone delivered.
set -euo pipefail

readonly SERVER_NAME=mx.smtptls.test
readonly MAIL_DOMAIN=smtptls.test
readonly SASL_USER=probe@$MAIL_DOMAIN
# smtpd_sasl_path: relative to the queue directory (smtpd runs there).
readonly SASL_SOCKET=private/dovecot-auth
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

have_dovecot() { command -v dovecot >/dev/null 2>&1 && command -v doveconf >/dev/null 2>&1; }

# The configuration written below is Dovecot 2.3's; 2.4 changed the syntax
# (passdb/userdb blocks, setting names) and rejects it.
check_dovecot_version() {
    local version
    version=$(dovecot --version 2>/dev/null) || die "dovecot --version failed"
    version=${version%% *}
    [[ $version == 2.3.* ]] ||
        die "found Dovecot $version; .ci/postfix.sh writes a Dovecot 2.3 configuration (Debian 12, Ubuntu 22.04/24.04)"
}

# PID of the live master of the Dovecot whose base_dir is $1, or fail.
dovecot_master_pid() { # BASE_DIR
    local pid
    [[ -r $1/master.pid ]] || return 1
    read -r pid <"$1/master.pid" || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ $(ps -o comm= -p "$pid" 2>/dev/null) == dovecot ]] || return 1
    echo "$pid"
}

# apt may start the distro's default Dovecot when it installs dovecot-core
# (not in containers whose policy-rc.d forbids it). Ours does not need it and
# does not share anything with it, but stop it: nothing should run that this
# script did not ask for.
stop_default_dovecot() {
    local pid
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
        if systemctl is-active --quiet dovecot.service dovecot.socket 2>/dev/null; then
            log "stopping the distro's default Dovecot that apt started (systemctl)"
            systemctl stop dovecot.service dovecot.socket >&2 2>/dev/null || true
        fi
    fi
    pid=$(dovecot_master_pid /run/dovecot) || return 0
    log "stopping the distro's default Dovecot that apt started (pid $pid)"
    dovecot -c /etc/dovecot/dovecot.conf stop >&2 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
}

ensure_installed() {
    local missing=()
    command -v postfix >/dev/null 2>&1 || missing+=(postfix)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    have_dovecot || missing+=(dovecot-core)
    ((${#missing[@]})) || return 0
    [[ $(id -u) == 0 ]] || die "${missing[*]} missing and not root: install them with apt-get (as root)"
    command -v apt-get >/dev/null 2>&1 || die "${missing[*]} missing and no apt-get to install them"
    log "installing ${missing[*]} with apt-get"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" >&2
    command -v postfix >/dev/null 2>&1 || die "postfix still not found after apt-get install"
    command -v openssl >/dev/null 2>&1 || die "openssl still not found after apt-get install"
    have_dovecot || die "dovecot still not found after apt-get install dovecot-core"
    # "No configuration" means Debian does not start a default instance; if a
    # package script started one anyway, stop what we just brought up.
    if [[ " ${missing[*]} " == *" postfix "* ]] && postfix status >/dev/null 2>&1; then
        log "stopping the distro's default Postfix instance that apt started"
        postfix stop >&2 || true
    fi
    if [[ " ${missing[*]} " == *" dovecot-core "* ]]; then
        stop_default_dovecot
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
    printf 'export SMTPTLS_POSTFIX_USER=%q\n' "$SASL_USER"
    printf 'export SMTPTLS_POSTFIX_PASSWORD=%q\n' "$(cat "$dir/dovecot/password")"
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
# discard:, not error:, so that RCPT TO the test addresses is accepted.
virtual_transport = discard:virtual delivery disabled (smtptls test instance)
# Recipients: $MAIL_DOMAIN is ours, with only the addresses in the map;
# other addresses there get 550 at RCPT (smtpd_reject_unlisted_recipient),
# other domains 554 relay access denied, even when authenticated (no
# permit_sasl_authenticated in smtpd_relay_restrictions).
virtual_mailbox_domains = $MAIL_DOMAIN
virtual_mailbox_maps = texthash:$dir/conf/virtual_mailboxes
biff = no
append_dot_mydomain = no
# TLS: STARTTLS offered, certificate generated at start.
smtpd_tls_security_level = may
smtpd_tls_chain_files = $dir/tls/key.pem, $dir/tls/cert.pem
smtpd_tls_loglevel = 1
# SMTP AUTH through Dovecot, offered only inside TLS.
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $SASL_SOCKET
smtpd_tls_auth_only = yes
smtpd_sasl_security_options = noanonymous, noplaintext
smtpd_sasl_tls_security_options = noanonymous
broken_sasl_auth_clients = no
EOF
    cat >"$dir/conf/virtual_mailboxes" <<EOF
# Generated by .ci/postfix.sh: the only valid recipients (mail to them goes to
# virtual_transport, which is discard:, and smtptls never sends DATA anyway).
$SASL_USER ok
postmaster@$MAIL_DOMAIN ok
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

# A private, auth-only Dovecot (Dovecot 2.3 configuration syntax).
write_dovecot_conf() { # DIR
    local dir=$1 dd=$1/dovecot
    cat >"$dd/dovecot.conf" <<EOF
# Generated by .ci/postfix.sh: auth-only Dovecot for the smtptls test Postfix.
# Started with \`dovecot -c $dd/dovecot.conf\`; shares nothing with a system
# Dovecot (own base_dir, state_dir and instance name, no network listener).
base_dir = $dd/run
state_dir = $dd/state
instance_name = smtptls-dovecot-${dir##*.}
# No IMAP/POP3/LMTP/submission: the auth service only, and no TCP listener
# (listen only matters for inet listeners; there are none).
protocols =
listen = 127.0.0.1
log_path = $dd/dovecot.log
ssl = no
shutdown_clients = yes
# Postfix passes the TLS state; AUTH comes only inside TLS anyway.
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_verbose = yes
# Failed logins are answered after 1 s (default 2), and without the growing
# per-IP penalty (up to 15 s) that would slow the test's deliberate failures
# from 127.0.0.1 down: that anvil listener is disabled (mode 0).
auth_failure_delay = 1 secs
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
passdb {
  driver = passwd-file
  args = scheme=SHA512-CRYPT $dd/users
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}
service auth {
  # Postfix's smtpd (user postfix) connects here (smtpd_sasl_path).
  unix_listener $dir/queue/$SASL_SOCKET {
    mode = 0660
    user = postfix
    group = postfix
  }
}
EOF
    doveconf -c "$dd/dovecot.conf" -n >/dev/null || die "Dovecot rejects its configuration ($dd/dovecot.conf)"
}

# The test user, with a password made now (test-only; printed by `env`).
write_dovecot_users() { # DIR
    local dd=$1/dovecot password hash user
    password=$(openssl rand -base64 18) || die "openssl rand failed"
    [[ $password =~ ^[A-Za-z0-9+/]{24}$ ]] || die "unexpected password from openssl rand"
    hash=$(printf '%s\n' "$password" | openssl passwd -6 -stdin) || die "openssl passwd -6 failed"
    [[ $hash == \$6\$* ]] || die "unexpected hash from openssl passwd -6"
    (
        umask 077
        printf '%s\n' "$password" >"$dd/password"
        printf '%s:{SHA512-CRYPT}%s::::::\n' "$SASL_USER" "$hash" >"$dd/users"
    )
    # Read by the auth process, which runs as Dovecot's internal user.
    user=$(doveconf -c "$dd/dovecot.conf" -h default_internal_user) || user=
    [[ -n $user ]] || die "cannot find Dovecot's default_internal_user"
    chgrp "$user" "$dd/users" || die "cannot give Dovecot's internal user $user access to $dd/users"
    chmod 640 "$dd/users"
}

start_dovecot() { # DIR
    local dir=$1 dd=$1/dovecot i
    # A Unix socket path holds at most 107 bytes (sun_path); the longest of
    # ours is DIR/dovecot/run/token-login/tokenlogin (DIR + 35).
    ((${#dir} <= 70)) ||
        die "$dir is too long a path for Dovecot's Unix sockets under it: set a shorter TMPDIR"
    dovecot -c "$dd/dovecot.conf" >&2 || die "could not start Dovecot (log: $dd/dovecot.log)"
    for ((i = 0; i < 100; i++)); do # 10 s
        if [[ -S $dir/queue/$SASL_SOCKET ]] && dovecot_master_pid "$dd/run" >/dev/null; then
            log "Dovecot auth (pid $(dovecot_master_pid "$dd/run")) listening on $dir/queue/$SASL_SOCKET"
            return 0
        fi
        sleep 0.1
    done
    die "Dovecot's auth socket $dir/queue/$SASL_SOCKET did not appear within 10 s (log: $dd/dovecot.log)"
}

# Stop the Dovecot of DIR, by pid, and every process of its session.
stop_dovecot() { # DIR
    local dd=$1/dovecot pid sid i pids
    pid=$(dovecot_master_pid "$dd/run") || return 0
    sid=$(ps -o sid= -p "$pid" | tr -d ' ') || sid=
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do # 10 s
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "Dovecot master $pid still running after 10 s, killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    # The Dovecot master (like Postfix's) leads its own session.
    [[ $sid =~ ^[0-9]+$ && $sid == "$pid" ]] || return 0
    for ((i = 0; i < 50; i++)); do # 5 s
        pids=$(session_pids "$sid")
        [[ -n $pids ]] || return 0
        sleep 0.1
    done
    log "killing leftover Dovecot processes: ${pids//$'\n'/ }"
    # shellcheck disable=SC2086 # word splitting of the pid list is intended
    kill -KILL $pids 2>/dev/null || true
}

# Succeed when EHLO inside TLS on 127.0.0.1:$1 offers AUTH with PLAIN and
# LOGIN: Postfix reached Dovecot's socket and got its mechanisms.
auth_offered() { # PORT
    local out
    out=$(printf 'EHLO client.smtptls.test\nQUIT\n' |
        timeout 15 openssl s_client -connect "127.0.0.1:$1" -starttls smtp \
            -name client.smtptls.test -crlf -quiet 2>/dev/null) || true
    out=${out//$'\r'/}
    grep -Eq '^250[- ]AUTH( .*)? PLAIN( |$)' <<<"$out" && grep -Eq '^250[- ]AUTH( .*)? LOGIN( |$)' <<<"$out"
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
        if [[ -s $starting_dir/dovecot/dovecot.log ]]; then
            log "last lines of the Dovecot log:"
            tail -n 20 "$starting_dir/dovecot/dovecot.log" >&2 || true
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

# Wait (bounded) until EHLO inside TLS offers AUTH PLAIN and LOGIN.
wait_auth_offered() { # PORT
    local deadline=$((SECONDS + BANNER_TIMEOUT))
    while ((SECONDS < deadline)); do
        if auth_offered "$1"; then
            log "AUTH PLAIN LOGIN offered inside TLS on 127.0.0.1:$1"
            return 0
        fi
        sleep 0.5
    done
    log "EHLO inside TLS on 127.0.0.1:$1 does not offer AUTH PLAIN and LOGIN within ${BANNER_TIMEOUT}s"
    return 1
}

cmd_start() {
    [[ $(id -u) == 0 ]] || die "start must run as root (the Postfix master needs it)"
    ensure_installed
    check_dovecot_version
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
    mkdir -p "$dir/conf" "$dir/queue" "$dir/data" "$dir/dovecot/state"
    generate_cert "$dir"
    write_main_cf "$dir"
    write_dovecot_conf "$dir"
    write_dovecot_users "$dir"

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
            # Before Postfix: smtpd asks Dovecot for the mechanisms at EHLO.
            [[ -d $dir/queue/private ]] || die "postfix set-permissions did not create $dir/queue/private"
            start_dovecot "$dir"
        fi
        if try_start "$dir" "$port"; then
            wait_auth_offered "$port" || die "Postfix does not offer SASL AUTH (logs: $dir/maillog, $dir/dovecot/dovecot.log)"
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
    stop_dovecot "$dir"
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
    local dir pid dpid
    if dir=$(recorded_dir) && pid=$(master_pid "$dir"); then
        log "running: master pid $pid, ports $(cat "$dir/port") (STARTTLS) and $(cat "$dir/smtps-port") (implicit TLS), dir $dir"
        if dpid=$(dovecot_master_pid "$dir/dovecot/run"); then
            log "Dovecot auth running: master pid $dpid"
        else
            log "Dovecot auth NOT running (AUTH will fail)"
            return 1
        fi
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
    if [[ -e $dir/dovecot/dovecot.log ]]; then
        printf '\n==> %s <==\n' "$dir/dovecot/dovecot.log"
        cat "$dir/dovecot/dovecot.log"
    fi
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
