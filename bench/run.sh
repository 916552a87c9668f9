#!/usr/bin/env bash
# smtptls benchmark against `openssl s_client`, on loopback only.
#
#   bash bench/run.sh          # as root on Debian/Ubuntu (apt-get installs what is missing)
#
# What it does:
#   1. installs hyperfine, time (GNU /usr/bin/time), openssl and dnsmasq-base with apt-get if
#      they are missing (Postfix and Dovecot come with .ci/postfix.sh); needs cargo already;
#   2. cargo build --release: the smtptls binary and examples/slow_smtp.rs, the slow server;
#   3. starts the throwaway loopback Postfix CI uses (.ci/postfix.sh start), the slow server
#      (200 addresses 127.1.0.1-200 on one port, and 8 addresses 127.2.0.1-8 on another, each
#      waiting 50 ms before every SMTP reply) and a dnsmasq on 127.0.0.1 answering for the test
#      domain bench.smtptls.test (4 MX hosts x 2 addresses in 127.2.0.1-8); all stopped on exit;
#   4. measures, with hyperfine (warmups, repeated runs) and /usr/bin/time (peak RSS):
#      case 1  one get-cert against Postfix vs `openssl s_client -starttls smtp`: wall time,
#              client CPU (user+sys) and peak RSS;
#      case 2  200 slow targets: `get-cert --targets FILE --concurrency 32` vs a sequential loop
#              of `openssl s_client` over the same targets;
#      case 3  `check` of the domain (8 addresses) vs the slowest single get-cert of them;
#   5. prints a Markdown table (date, cores, load, tool versions, each metric for both tools,
#      the ratio and PASS/FAIL against the target) and writes it to bench/results.md.
# Exit status: 0 when every target passed, 3 when one failed (the table is written either way),
# 1 when the bench itself could not run.
#
# Nothing but 127.0.0.0/8 is contacted (apt-get aside). The measurements take about 2 minutes;
# a first release build (fat LTO) takes several minutes more on 2 cores.
#
# Knobs (environment): BENCH_RUNS (case 1 runs per tool, default 30), BENCH_LOOP_RUNS (runs of
# the 200-target s_client loop, each ~35 s, default 2), BENCH_KEEP=1 keeps the work directory.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly ROOT=$PWD
readonly RUNS=${BENCH_RUNS:-30}
readonly LOOP_RUNS=${BENCH_LOOP_RUNS:-2}
readonly TARGETS=200
readonly CONCURRENCY=32
readonly DELAY_MS=50
readonly DOMAIN=bench.smtptls.test
readonly MX_HOSTS=4
readonly PER_HOST=2
readonly POSTFIX_NAME=mx.smtptls.test
# Targets from the issue: CPU <= 0.5x, RSS <= 0.9x, speedup >= 15x, check <= 1.3x.
readonly MAX_CPU_RATIO=0.5 MAX_RSS_RATIO=0.9 MIN_SPEEDUP=15 MAX_CHECK_RATIO=1.3

export PATH="$PATH:/usr/sbin:/sbin"
log() { printf 'bench: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/smtptls-bench.XXXXXX")
slow_pid='' dns_pid='' postfix_started=''
cleanup() {
    local rc=$?
    local pid
    for pid in $slow_pid $dns_pid; do
        kill "$pid" 2>/dev/null || true
    done
    if [[ -n $postfix_started ]]; then
        bash .ci/postfix.sh stop >&2 || true
    fi
    if [[ ${BENCH_KEEP:-} == 1 || ($rc != 0 && $rc != 3) ]]; then
        log "work directory kept: $work"
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# --- tools ---------------------------------------------------------------------------------

ensure_tools() {
    local missing=()
    command -v hyperfine >/dev/null 2>&1 || missing+=(hyperfine)
    [[ -x /usr/bin/time ]] || missing+=(time)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    command -v dnsmasq >/dev/null 2>&1 || missing+=(dnsmasq-base)
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install a Rust toolchain (1.85 or newer) first"
    ((${#missing[@]})) || return 0
    [[ $(id -u) == 0 ]] || die "${missing[*]} missing and not root: install them with apt-get (as root)"
    command -v apt-get >/dev/null 2>&1 || die "${missing[*]} missing and no apt-get to install them"
    log "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" >&2
}

build() {
    log "cargo build --release (smtptls and the slow server example)"
    cargo build --release --locked --bin smtptls --example slow_smtp >&2
    local target=${CARGO_TARGET_DIR:-$ROOT/target}
    smtptls=$target/release/smtptls
    slow_server=$target/release/examples/slow_smtp
    [[ -x $smtptls && -x $slow_server ]] || die "release binaries not found after the build"
}

# --- servers -------------------------------------------------------------------------------

start_postfix() {
    log "starting the loopback Postfix (.ci/postfix.sh start)"
    postfix_started=1 # stop is a no-op if start failed half-way
    local env
    env=$(bash .ci/postfix.sh start)
    eval "$env"
    [[ -n ${SMTPTLS_POSTFIX_PORT:-} && -r ${SMTPTLS_POSTFIX_CERT:-} ]] ||
        die ".ci/postfix.sh start gave no port or certificate"
}

start_slow_server() {
    local names=() i
    for ((i = 1; i <= MX_HOSTS; i++)); do names+=(--name "mx$i.$DOMAIN"); done
    log "starting the slow server (${DELAY_MS} ms before every reply)"
    "$slow_server" --dir "$work/slow" --delay-ms "$DELAY_MS" --lifetime 1800 \
        --listen "127.1.0.1+$TARGETS" --listen "127.2.0.1+$((MX_HOSTS * PER_HOST))" \
        "${names[@]}" >"$work/slow.log" 2>&1 &
    slow_pid=$!
    for ((i = 0; i < 100; i++)); do
        [[ -e $work/slow/ready ]] && break
        kill -0 "$slow_pid" 2>/dev/null || die "the slow server exited: $(cat "$work/slow.log")"
        sleep 0.1
    done
    [[ -e $work/slow/ready ]] || die "the slow server did not get ready in 10 s"
    ca=$work/slow/ca.pem
    many_targets=$work/slow/targets-1.txt
    mx_port=$(cat "$work/slow/port-2")
}

# dnsmasq answering for $DOMAIN only (no upstream, no /etc/hosts): MX hosts mx1..mxN, each
# with PER_HOST addresses from 127.2.0.1; every other name under $DOMAIN is NXDOMAIN.
start_dns() {
    local hosts=$work/dns-hosts args=() h a ip=0 try
    : >"$hosts"
    for ((h = 1; h <= MX_HOSTS; h++)); do
        args+=("--mx-host=$DOMAIN,mx$h.$DOMAIN,$((h * 10))")
        for ((a = 1; a <= PER_HOST; a++)); do
            ip=$((ip + 1))
            printf '127.2.0.%s mx%s.%s\n' "$ip" "$h" "$DOMAIN" >>"$hosts"
        done
    done
    # dnsmasq reads the hosts file after dropping root for its own user.
    chmod go+rx "$work"
    chmod go+r "$hosts"
    for ((try = 0; try < 20; try++)); do
        dns_port=$((20000 + RANDOM % 30000))
        : >"$work/dns.log"
        dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
            --port="$dns_port" --listen-address=127.0.0.1 --bind-interfaces \
            --addn-hosts="$hosts" --local="/$DOMAIN/" "${args[@]}" \
            --log-facility="$work/dns.log" >>"$work/dns.log" 2>&1 &
        dns_pid=$!
        local i
        for ((i = 0; i < 50; i++)); do
            grep -q "read $hosts" "$work/dns.log" && return 0
            grep -q "failed to load" "$work/dns.log" && break 2
            kill -0 "$dns_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill "$dns_pid" 2>/dev/null || true
        wait "$dns_pid" 2>/dev/null || true
        dns_pid=''
        # Only a port that is taken is worth another try.
        grep -q "in use" "$work/dns.log" || break
    done
    die "dnsmasq did not start: $(cat "$work/dns.log")"
}

# --- measuring -----------------------------------------------------------------------------

load() { cut -d' ' -f1-3 /proc/loadavg; }

# The [profile.release] settings in Cargo.toml, on one line.
profile() {
    # shellcheck disable=SC2016 # the backticks are Markdown, not a command substitution
    sed -n '/^\[profile\.release\]/,/^\[/p' Cargo.toml | grep '=' | sed 's/^/`/; s/$/`/' | paste -sd' '
}

# Whether the aws-lc in the build gathers CPU jitter entropy at start-up (aws-lc-sys builds it in
# unless AWS_LC_SYS_NO_JITTER_ENTROPY is set, in the environment or in .cargo/config.toml [env]).
jitter() {
    local yes='^(1|y|yes|true|on)$' set=${AWS_LC_SYS_NO_JITTER_ENTROPY:-}
    [[ -z $set ]] && set=$(sed -n 's/^AWS_LC_SYS_NO_JITTER_ENTROPY *= *"\(.*\)"/\1/p' .cargo/config.toml 2>/dev/null)
    if [[ ${set,,} =~ $yes ]]; then
        echo "off (AWS_LC_SYS_NO_JITTER_ENTROPY=$set)"
    else
        echo "on (aws-lc-sys default)"
    fi
}

# hyperfine without a shell (-N: no shell start-up in the numbers; stdin is /dev/null, output
# discarded); results as CSV for field().
hf() { # CSV hyperfine-args...
    local csv=$1
    shift
    hyperfine -N --style basic --export-csv "$csv" "$@" >&2
}

# A field of one command's row in a hyperfine CSV: mean, stddev, median, user, system, min, max.
field() { # CSV NAME FIELD
    awk -F, -v n="$2" -v f="$3" 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $1 == n { print $(col[f]) }' "$1"
}

# Median peak RSS in KiB of N runs of a command (GNU time's %M), stdin /dev/null.
peak_rss() { # N command...
    local n=$1 i
    shift
    for ((i = 0; i < n; i++)); do
        /usr/bin/time -f '%M' -o "$work/rss" "$@" </dev/null >/dev/null 2>&1 ||
            die "failed while measuring RSS: $*"
        tail -n 1 "$work/rss"
    done | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

calc() { awk "BEGIN { printf \"%s\", $* }"; }
verdict() { # VALUE OP LIMIT
    if awk -v v="$1" -v l="$3" "BEGIN { exit !(v $2 l) }"; then echo PASS; else echo FAIL; fi
}

case1() {
    log "case 1: one get-cert against Postfix, $RUNS runs each (load $(load))"
    load1=$(load)
    local port=$SMTPTLS_POSTFIX_PORT cert=$SMTPTLS_POSTFIX_CERT
    c1_smtptls=("$smtptls" get-cert "127.0.0.1:$port" --sni "$POSTFIX_NAME" --ca-file "$cert" -q)
    c1_openssl=(openssl s_client -starttls smtp -connect "127.0.0.1:$port"
        -servername "$POSTFIX_NAME" -verify_hostname "$POSTFIX_NAME" -CAfile "$cert"
        -verify_return_error)
    "${c1_smtptls[@]}" >/dev/null 2>&1 </dev/null || die "get-cert against Postfix failed"
    "${c1_openssl[@]}" >/dev/null 2>&1 </dev/null || die "openssl s_client against Postfix failed"
    hf "$work/c1.csv" --warmup 3 --runs "$RUNS" \
        -n smtptls "$(printf '%q ' "${c1_smtptls[@]}")" \
        -n openssl "$(printf '%q ' "${c1_openssl[@]}")"
    rss1_s=$(peak_rss 15 "${c1_smtptls[@]}")
    rss1_o=$(peak_rss 15 "${c1_openssl[@]}")
}

case2() {
    log "case 2: $TARGETS slow targets (load $(load))"
    load2=$(load)
    c2_smtptls=("$smtptls" get-cert --targets "$many_targets" --concurrency "$CONCURRENCY"
        --ca-file "$ca" -q)
    cat >"$work/sclient-loop.sh" <<EOF
# The sequential loop: one openssl s_client after the other over the targets file.
set -eu
while read -r target; do
    openssl s_client -starttls smtp -connect "\$target" -CAfile "$ca" \\
        -verify_ip "\${target%:*}" -verify_return_error </dev/null >/dev/null 2>&1
done <"$many_targets"
EOF
    "${c2_smtptls[@]}" >"$work/c2-check.txt" 2>&1 </dev/null ||
        die "get-cert --targets failed: $(tail -n 3 "$work/c2-check.txt")"
    hf "$work/c2.csv" --warmup 1 --runs 5 \
        -n smtptls "$(printf '%q ' "${c2_smtptls[@]}")"
    hf "$work/c2-loop.csv" --runs "$LOOP_RUNS" \
        -n openssl-loop "bash $work/sclient-loop.sh"
    rss2_s=$(peak_rss 3 "${c2_smtptls[@]}")
}

case3() {
    log "case 3: check of $DOMAIN, $MX_HOSTS MX x $PER_HOST addresses (load $(load))"
    load3=$(load)
    c3_check=("$smtptls" check "$DOMAIN" --resolver "127.0.0.1:$dns_port" --port "$mx_port"
        --ca-file "$ca" -q)
    "${c3_check[@]}" >"$work/c3-check.txt" 2>&1 </dev/null ||
        die "check failed: $(cat "$work/c3-check.txt")"
    local want=$((MX_HOSTS * PER_HOST)) got
    got=$(grep -c "TLSv1" "$work/c3-check.txt" || true)
    ((got == want)) || die "check probed $got addresses, not $want: $(cat "$work/c3-check.txt")"
    local singles=() ip=0 h a
    for ((h = 1; h <= MX_HOSTS; h++)); do
        for ((a = 1; a <= PER_HOST; a++)); do
            ip=$((ip + 1))
            singles+=(-n "127.2.0.$ip" "$(printf '%q ' "$smtptls" get-cert "127.2.0.$ip:$mx_port" \
                --sni "mx$h.$DOMAIN" --ca-file "$ca" -q)")
        done
    done
    hf "$work/c3.csv" --warmup 2 --runs 10 -n check "$(printf '%q ' "${c3_check[@]}")" "${singles[@]}"
    slowest=$(awk -F, 'NR > 1 && $1 != "check" && (max == "" || $2 + 0 > max + 0) { max = $2; name = $1 }
        END { print name }' "$work/c3.csv")
}

# --- the table -----------------------------------------------------------------------------

ms() { calc "$1 * 1000" | xargs printf '%.1f ms'; }
secs() { printf '%.2f s' "$1"; }
mib() { calc "$1 / 1024" | xargs printf '%.1f MiB'; }

report() {
    local f1=$work/c1.csv f2=$work/c2.csv f2l=$work/c2-loop.csv f3=$work/c3.csv
    local cpu_s cpu_o wall2_s wall2_o cpu2_s cpu2_o check_w single_w
    cpu_s=$(calc "$(field "$f1" smtptls user) + $(field "$f1" smtptls system)")
    cpu_o=$(calc "$(field "$f1" openssl user) + $(field "$f1" openssl system)")
    wall2_s=$(field "$f2" smtptls mean)
    wall2_o=$(field "$f2l" openssl-loop mean)
    cpu2_s=$(calc "($(field "$f2" smtptls user) + $(field "$f2" smtptls system)) / $TARGETS")
    cpu2_o=$(calc "($(field "$f2l" openssl-loop user) + $(field "$f2l" openssl-loop system)) / $TARGETS")
    check_w=$(field "$f3" check mean)
    single_w=$(field "$f3" "$slowest" mean)
    local r_wall1 r_cpu r_rss speedup r_cpu2 r_check
    r_wall1=$(calc "$(field "$f1" smtptls mean) / $(field "$f1" openssl mean)")
    r_cpu=$(calc "$cpu_s / $cpu_o")
    r_rss=$(calc "$rss1_s / $rss1_o")
    speedup=$(calc "$wall2_o / $wall2_s")
    r_cpu2=$(calc "$cpu2_s / $cpu2_o")
    r_check=$(calc "$check_w / $single_w")
    local postfix_version
    postfix_version=$(postconf -d -h mail_version 2>/dev/null || echo '?')
    cat <<EOF
## Benchmark: smtptls vs openssl s_client (loopback)

- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(free -g | awk '/^Mem:/ { print $2 }') GiB, $(uname -sr)
- Load average (1/5/15 min) at case 1: $load1; case 2: $load2; case 3: $load3; at the end: $(load)
- Tools: $("$smtptls" --version), $(openssl version | cut -d' ' -f1-2), $(hyperfine --version), GNU time $(dpkg-query -W -f='${Version}' time 2>/dev/null || echo '?'), Postfix $postfix_version, dnsmasq $(dnsmasq --version | head -n 1 | awk '{ print $3 }'), $(rustc --version | cut -d' ' -f1-2)
- smtptls release build: $(profile); binary $(mib "$(($(stat -c %s "$smtptls") / 1024))"); aws-lc CPU jitter entropy $(jitter)

| case | metric | smtptls | openssl s_client | ratio | target | result |
|---|---|---|---|---|---|---|
| 1. one get-cert, Postfix STARTTLS ($RUNS runs) | wall time, mean | $(ms "$(field "$f1" smtptls mean)") ± $(ms "$(field "$f1" smtptls stddev)") | $(ms "$(field "$f1" openssl mean)") ± $(ms "$(field "$f1" openssl stddev)") | $(printf '%.2f' "$r_wall1") | — | — |
| | client CPU (user+sys), mean | $(ms "$cpu_s") | $(ms "$cpu_o") | $(printf '%.2f' "$r_cpu") | ≤ $MAX_CPU_RATIO | $(verdict "$r_cpu" '<=' "$MAX_CPU_RATIO") |
| | peak RSS, median of 15 | $(mib "$rss1_s") | $(mib "$rss1_o") | $(printf '%.2f' "$r_rss") | ≤ $MAX_RSS_RATIO | $(verdict "$r_rss" '<=' "$MAX_RSS_RATIO") |
| 2. $TARGETS targets, ${DELAY_MS} ms before each reply | wall time, mean | $(secs "$wall2_s") (\`--targets\`, \`--concurrency $CONCURRENCY\`, 5 runs) | $(secs "$wall2_o") (sequential loop, $LOOP_RUNS runs) | $(printf '%.1f' "$speedup")× faster | ≥ ${MIN_SPEEDUP}× | $(verdict "$speedup" '>=' "$MIN_SPEEDUP") |
| | client CPU per target | $(ms "$cpu2_s") | $(ms "$cpu2_o") (with the loop's shell) | $(printf '%.2f' "$r_cpu2") | — | — |
| | peak RSS of the whole run | $(mib "$rss2_s") | — | — | — | — |
| 3. \`check\`, $MX_HOSTS MX × $PER_HOST addresses, ${DELAY_MS} ms delay (10 runs) | wall time, mean | $(ms "$check_w") (\`check\`) | $(ms "$single_w") (slowest single \`get-cert\`, $slowest) | $(printf '%.2f' "$r_check") | ≤ $MAX_CHECK_RATIO | $(verdict "$r_check" '<=' "$MAX_CHECK_RATIO") |

Case 1: \`smtptls get-cert 127.0.0.1:PORT --sni $POSTFIX_NAME --ca-file CERT -q\` against
\`openssl s_client -starttls smtp -connect 127.0.0.1:PORT -servername $POSTFIX_NAME -verify_hostname $POSTFIX_NAME -CAfile CERT -verify_return_error </dev/null\`
(Postfix from \`.ci/postfix.sh\`, RSA-2048 certificate; both verify it). smtptls does more per
probe: EHLO again inside TLS and QUIT, as RFC 3207 asks, where s_client hangs up right after the
handshake. smtptls asks for immediate ACKs (TCP_QUICKACK), without which Postfix's Nagle would hold
that EHLO reply ~40 ms for a delayed ACK (see the README's Performance section).
Cases 2 and 3: \`examples/slow_smtp.rs\` waits ${DELAY_MS} ms before every reply (5 replies for
smtptls, 3 for s_client), ECDSA P-256 certificate; the DNS for case 3 is dnsmasq on 127.0.0.1.
CPU is the user+sys time hyperfine reports for the process and its children; peak RSS is GNU
time's maximum resident set size.
EOF
}

main() {
    [[ $(uname -s) == Linux ]] || die "Linux only (any 127.x.y.z must work as a local address)"
    ensure_tools
    build
    start_postfix
    start_slow_server
    start_dns
    case1
    case2
    case3
    report | tee "$ROOT/bench/results.md"
    if grep -q '| FAIL |' "$ROOT/bench/results.md"; then
        log "at least one target was missed (FAIL in the table)"
        exit 3
    fi
}

main "$@"
