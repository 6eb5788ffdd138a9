#!/usr/bin/env bash
# The seed's PostgreSQL HA cluster on this machine, without containers: a
# primary streaming to two hot standbys, one pgpulse per node, Prometheus
# scraping them with deploy/prometheus/alerts.yml loaded, HAProxy with
# deploy/haproxy/haproxy.cfg: a write port to the primary, a read port
# over the standbys, and one more pgpulse watching all three nodes that
# serves the dashboard where the seed's web UI was (port 5000).
#
#   deploy/local/cluster.sh [up]             install, build, start (default)
#   deploy/local/cluster.sh status           roles, replication, exporters, Prometheus, HAProxy
#   deploy/local/cluster.sh failover [NODE]  stop the primary, promote NODE (default:
#                                            the first standby), repoint the other standby
#   deploy/local/cluster.sh rejoin [--rewind] [NODE]
#                                            make the old primary (or NODE) a standby of
#                                            the new one: a fresh pg_basebackup, or pg_rewind
#   deploy/local/cluster.sh down [--wipe]    stop everything; --wipe also deletes the data
#
# Nodes: postgres-primary, postgres-replica-1, postgres-replica-2. A node
# keeps its name and ports whatever its role: after a failover
# postgres-replica-1 is the primary. Environment (defaults in brackets):
#   PRIMARY_PORT [5432]  REPLICA1_PORT [5433]  REPLICA2_PORT [5434]
#   PULSE_PRIMARY_PORT [9187]  PULSE_REPLICA1_PORT [9188]  PULSE_REPLICA2_PORT [9189]
#   PROMETHEUS_PORT [9090]  HAPROXY_WRITE_PORT [6432]  HAPROXY_READ_PORT [6433]
#   PULSE_CLUSTER_PORT [9190]  DASHBOARD_PORT [5000]
#   PULSE_DB_PASSWORD [securepwd123, the seed's demo password: set your own]
#   CLUSTER_DIR [${XDG_STATE_HOME:-$HOME/.local/state}/pgpulse-cluster]
#   PGPULSE_BIN [build with CMake into build/ and use build/pgpulse]
#   PG_BINDIR [/usr/lib/postgresql/15/bin]
# `up` records the ports in $CLUSTER_DIR/cluster.env; later commands use them.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
prog=cluster
NODES=(postgres-primary postgres-replica-1 postgres-replica-2)

die() {
    echo "$prog: $*" >&2
    exit 1
}
say() { echo "$prog: $*"; }

usage() {
    sed -n '2,29s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

CLUSTER_DIR=${CLUSTER_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/pgpulse-cluster}
envfile=$CLUSTER_DIR/cluster.env
if [[ -f $envfile ]]; then
    # The running cluster's ports and paths win over the environment.
    # shellcheck source=/dev/null
    source "$envfile"
fi
PRIMARY_PORT=${PRIMARY_PORT:-5432}
REPLICA1_PORT=${REPLICA1_PORT:-5433}
REPLICA2_PORT=${REPLICA2_PORT:-5434}
PULSE_PRIMARY_PORT=${PULSE_PRIMARY_PORT:-9187}
PULSE_REPLICA1_PORT=${PULSE_REPLICA1_PORT:-9188}
PULSE_REPLICA2_PORT=${PULSE_REPLICA2_PORT:-9189}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}
HAPROXY_WRITE_PORT=${HAPROXY_WRITE_PORT:-6432}
HAPROXY_READ_PORT=${HAPROXY_READ_PORT:-6433}
PULSE_CLUSTER_PORT=${PULSE_CLUSTER_PORT:-9190}
DASHBOARD_PORT=${DASHBOARD_PORT:-5000}
PULSE_DB_PASSWORD=${PULSE_DB_PASSWORD:-securepwd123}
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
# Debian puts haproxy in /usr/sbin, which a user's PATH may lack.
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
DB_USER=testadmin
DB_NAME=testdb

# -- nodes -----------------------------------------------------------------

pg_port() {
    case $1 in
    postgres-primary) echo "$PRIMARY_PORT" ;;
    postgres-replica-1) echo "$REPLICA1_PORT" ;;
    postgres-replica-2) echo "$REPLICA2_PORT" ;;
    *) die "unknown node \"$1\" (nodes: ${NODES[*]})" ;;
    esac
}
pulse_port() {
    case $1 in
    postgres-primary) echo "$PULSE_PRIMARY_PORT" ;;
    postgres-replica-1) echo "$PULSE_REPLICA1_PORT" ;;
    postgres-replica-2) echo "$PULSE_REPLICA2_PORT" ;;
    esac
}
slot_of() { echo "${1//-/_}"; }

# PostgreSQL refuses to run as root: then it runs as the postgres user, and
# its files live where that user can reach them.
as_pg=()
if [[ $(id -u) == 0 ]]; then
    as_pg=(runuser -u postgres --)
fi
pg() { "${as_pg[@]}" "$@"; }

node_dir() { echo "$PGROOT/$1"; }
data_dir() { echo "$PGROOT/$1/data"; }

# psql as the superuser over the node's own socket (a directory only the
# server's user can open, so trust there is not trust for everyone).
sql() {
    local node=$1
    shift
    pg env -u PGPASSWORD PGCONNECT_TIMEOUT=5 psql -X -q -A -t -v ON_ERROR_STOP=1 \
        -h "$(node_dir "$node")" -p "$(pg_port "$node")" -U postgres -d postgres -c "$*"
}

is_running() {
    [[ -f $(data_dir "$1")/postmaster.pid ]] &&
        pg "$PG_BINDIR/pg_ctl" -D "$(data_dir "$1")" status >/dev/null 2>&1
}
is_ready() { pg "$PG_BINDIR/pg_isready" -q -h "$(node_dir "$1")" -p "$(pg_port "$1")"; }
role_of() {
    local r
    r=$(sql "$1" "SELECT pg_is_in_recovery()" 2>/dev/null) || {
        echo down
        return
    }
    [[ $r == t ]] && echo standby || echo primary
}

is_primary() { [[ $(role_of "$1") == primary ]]; }

# The primary among the running nodes (empty if none).
current_primary() {
    local n
    for n in "${NODES[@]}"; do
        if is_running "$n" && [[ $(role_of "$n") == primary ]]; then
            echo "$n"
            return
        fi
    done
}

# wait_until SECONDS WHAT COMMAND...: polls COMMAND every 0.2 s.
wait_until() {
    local timeout=$1 what=$2
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "timed out after ${timeout}s waiting for $what"
        sleep 0.2
    done
}

# A libpq key=value string with the password quoted as libpq wants.
conninfo() {
    local port=$1 appname=${2:-}
    local pw=${PULSE_DB_PASSWORD//\\/\\\\}
    pw=${pw//\'/\\\'}
    local s="host=127.0.0.1 port=$port user=$DB_USER password='$pw'"
    [[ -z $appname ]] || s+=" application_name=$appname"
    echo "$s"
}

pg_start() {
    local node=$1 dir
    dir=$(node_dir "$node")
    # Node-specific settings go on the command line: pg_basebackup and
    # pg_rewind copy postgresql.conf from another node.
    pg "$PG_BINDIR/pg_ctl" -D "$(data_dir "$node")" -l "$dir/postgres.log" -w -t 120 \
        -o "-c port=$(pg_port "$node") -c unix_socket_directories='$dir' -c cluster_name=$node" \
        start >/dev/null || die "$node did not start; see $dir/postgres.log"
}

pg_stop() {
    if is_running "$1"; then
        pg "$PG_BINDIR/pg_ctl" -D "$(data_dir "$1")" -m fast -w -t 120 stop >/dev/null
    fi
}

# The node's pgpulse reports it connected (pgpulse retries with backoff,
# at most one query interval apart).
pulse_sees() { curl -fsS --max-time 2 "http://127.0.0.1:$(pulse_port "$1")/metrics" | grep -qx 'pg_up 1'; }

# application_name of the standbys streaming from node, one per line.
streaming_from() {
    sql "$1" "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1"
}
streams_from() { # standby primary
    streaming_from "$2" | grep -qx "$1"
}

# -- processes we start (pgpulse, Prometheus) -------------------------------

pidfile() { echo "$CLUSTER_DIR/run/$1.pid"; }

# Alive and still the process we started (pid files outlive reboots).
proc_alive() {
    local f pid
    f=$(pidfile "$1")
    [[ -f $f ]] || return 1
    pid=$(<"$f")
    [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2"
}

proc_stop() {
    local name=$1 match=$2 f pid
    f=$(pidfile "$name")
    if proc_alive "$name" "$match"; then
        pid=$(<"$f")
        kill "$pid"
        local deadline=$((SECONDS + 15))
        while kill -0 "$pid" 2>/dev/null; do
            if ((SECONDS >= deadline)); then
                kill -9 "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.2
        done
    fi
    rm -f "$f"
}

http_ok() { curl -fsS -o /dev/null --max-time 2 "$1"; }

pulse_start() {
    local node=$1 port
    port=$(pulse_port "$node")
    proc_alive "pgpulse-$node" "127.0.0.1:$port" && return 0
    local pw=${PULSE_DB_PASSWORD//\\/\\\\}
    pw=${pw//\'/\\\'}
    DATA_SOURCE_NAME="host=127.0.0.1 port=$(pg_port "$node") user=$DB_USER password='$pw' dbname=$DB_NAME sslmode=disable" \
        setsid nohup "$PGPULSE" --web.listen-address="127.0.0.1:$port" --collection.role-interval=1s \
        >>"$CLUSTER_DIR/log/pgpulse-$node.log" 2>&1 </dev/null &
    echo $! >"$(pidfile "pgpulse-$node")"
    wait_until 30 "pgpulse for $node on $port (log: $CLUSTER_DIR/log/pgpulse-$node.log)" \
        http_ok "http://127.0.0.1:$port/"
}

# Percent-encodes every byte but the unreserved ones of a URI.
urlencode() {
    local LC_ALL=C s=$1 out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case $c in
        [a-zA-Z0-9._~-]) out+=$c ;;
        *)
            printf -v c '%%%02X' "'$c"
            out+=$c
            ;;
        esac
    done
    echo "$out"
}

# One pgpulse for the whole cluster: every node as a target, the dashboard
# on its own port (only the dashboard there), metrics on PULSE_CLUSTER_PORT.
cluster_pulse_start() {
    proc_alive pgpulse-cluster "127.0.0.1:$PULSE_CLUSTER_PORT" && return 0
    # URIs: DATA_SOURCE_NAME is split on commas, which %2C hides
    local dsn="" n pw
    pw=$(urlencode "$PULSE_DB_PASSWORD")
    for n in "${NODES[@]}"; do
        dsn+="${dsn:+,}postgresql://$DB_USER:$pw@127.0.0.1:$(pg_port "$n")/$DB_NAME?sslmode=disable"
    done
    DATA_SOURCE_NAME=$dsn setsid nohup "$PGPULSE" --web.listen-address="127.0.0.1:$PULSE_CLUSTER_PORT" \
        --web.dashboard-address="127.0.0.1:$DASHBOARD_PORT" --collection.role-interval=1s \
        >>"$CLUSTER_DIR/log/pgpulse-cluster.log" 2>&1 </dev/null &
    echo $! >"$(pidfile pgpulse-cluster)"
    wait_until 30 "the cluster's pgpulse on $PULSE_CLUSTER_PORT (log: $CLUSTER_DIR/log/pgpulse-cluster.log)" \
        http_ok "http://127.0.0.1:$DASHBOARD_PORT/api/v1/status"
}

prometheus_config() {
    local dir=$CLUSTER_DIR/prometheus
    mkdir -p "$dir/data"
    cp "$root/deploy/prometheus/alerts.yml" "$dir/alerts.yml"
    # The shared config, with this machine's addresses and ports.
    sed -e "s/\"localhost:9090\"/\"127.0.0.1:$PROMETHEUS_PORT\"/" \
        -e "s/\"postgres-exporter-primary:9187\"/\"127.0.0.1:$PULSE_PRIMARY_PORT\"/" \
        -e "s/\"postgres-exporter-replica-1:9187\"/\"127.0.0.1:$PULSE_REPLICA1_PORT\"/" \
        -e "s/\"postgres-exporter-replica-2:9187\"/\"127.0.0.1:$PULSE_REPLICA2_PORT\"/" \
        "$root/deploy/prometheus/prometheus.yml" >"$dir/prometheus.yml"
    if grep -q -e postgres-exporter- -e localhost: "$dir/prometheus.yml"; then
        die "deploy/prometheus/prometheus.yml has targets this script does not know"
    fi
}

prometheus_start() {
    proc_alive prometheus "127.0.0.1:$PROMETHEUS_PORT" && return 0
    prometheus_config
    local dir=$CLUSTER_DIR/prometheus
    setsid nohup /usr/bin/prometheus --config.file="$dir/prometheus.yml" \
        --storage.tsdb.path="$dir/data" --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
        >>"$CLUSTER_DIR/log/prometheus.log" 2>&1 </dev/null &
    echo $! >"$(pidfile prometheus)"
    wait_until 60 "Prometheus on $PROMETHEUS_PORT (log: $CLUSTER_DIR/log/prometheus.log)" \
        http_ok "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"
}

# deploy/haproxy/haproxy.cfg with this machine's addresses and ports, checked
# with haproxy -c before it is used.
haproxy_config() {
    local dir=$CLUSTER_DIR/haproxy n exporter cfg out
    mkdir -p "$dir"
    cfg=$dir/haproxy.cfg
    local subst=(-e "s/^\( *bind\) :6432\$/\1 127.0.0.1:$HAPROXY_WRITE_PORT/"
        -e "s/^\( *bind\) :6433\$/\1 127.0.0.1:$HAPROXY_READ_PORT/"
        -e '/^resolvers docker$/,/^$/d' -e 's/ resolvers docker//')
    for n in "${NODES[@]}"; do
        exporter=postgres-exporter-${n#postgres-}
        subst+=(-e "s/ $exporter:9187 / 127.0.0.1:$(pulse_port "$n") /"
            -e "s/ $n:5432 / 127.0.0.1:$(pg_port "$n") /")
    done
    sed "${subst[@]}" "$root/deploy/haproxy/haproxy.cfg" >"$cfg"
    # Every address must be one of ours: no container name, no Docker DNS.
    if awk '($1 == "server" && $3 !~ /^127\.0\.0\.1:/) || ($1 == "bind" && $2 !~ /^127\.0\.0\.1:/) ||
            $1 == "resolvers" || $1 == "nameserver" { bad = 1 } END { exit !bad }' "$cfg"; then
        die "deploy/haproxy/haproxy.cfg has addresses this script does not know"
    fi
    out=$("$HAPROXY" -c -q -f "$cfg" 2>&1) || die "haproxy -c rejects $cfg: $out"
}

haproxy_start() {
    local cfg=$CLUSTER_DIR/haproxy/haproxy.cfg v
    proc_alive haproxy "$cfg" && return 0
    for v in HAPROXY_WRITE_PORT HAPROXY_READ_PORT; do
        ! port_taken "${!v}" || die "port ${!v} ($v) is taken; choose another one with $v=<port>"
    done
    haproxy_config
    setsid nohup "$HAPROXY" -db -f "$cfg" >>"$CLUSTER_DIR/log/haproxy.log" 2>&1 </dev/null &
    echo $! >"$(pidfile haproxy)"
    for v in HAPROXY_WRITE_PORT HAPROXY_READ_PORT; do
        wait_until 30 "HAProxy on ${!v} (log: $CLUSTER_DIR/log/haproxy.log)" port_taken "${!v}"
    done
}

# The node a new session through port lands on, or nothing.
lands_on() {
    local p n
    p=$(PGPASSWORD=$PULSE_DB_PASSWORD PGCONNECT_TIMEOUT=3 psql -X -q -A -t -h 127.0.0.1 \
        -p "$1" -U "$DB_USER" -d "$DB_NAME" -c "SELECT inet_server_port()" 2>/dev/null) || return 1
    for n in "${NODES[@]}"; do
        [[ $(pg_port "$n") != "$p" ]] || echo "$n"
    done
}

write_port_reaches() { [[ $(lands_on "$HAPROXY_WRITE_PORT") == "$1" ]]; }

# -- up ----------------------------------------------------------------------

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

check_ports() {
    local v seen=" "
    for v in PRIMARY_PORT REPLICA1_PORT REPLICA2_PORT PULSE_PRIMARY_PORT \
        PULSE_REPLICA1_PORT PULSE_REPLICA2_PORT PROMETHEUS_PORT HAPROXY_WRITE_PORT \
        HAPROXY_READ_PORT PULSE_CLUSTER_PORT DASHBOARD_PORT; do
        local p=${!v}
        if ! [[ $p =~ ^[0-9]+$ ]] || ((p < 1 || p > 65535)); then
            die "$v=$p is not a port number"
        fi
        [[ $seen != *" $p "* ]] || die "$v=$p: that port is given twice"
        seen+="$p "
        if port_taken "$p"; then
            die "port $p ($v) is taken; choose another one with $v=<port>"
        fi
    done
}

# Where PostgreSQL's files go: inside CLUSTER_DIR unless we are root and the
# postgres user cannot reach it (a home directory of mode 700, say).
choose_pgroot() {
    PGROOT=$CLUSTER_DIR/pg
    if ((${#as_pg[@]})) && ! runuser -u postgres -- test -x "$CLUSTER_DIR"; then
        PGROOT=/var/lib/postgresql/pgpulse-cluster-$(echo -n "$CLUSTER_DIR" | md5sum | cut -c1-8)
        say "the postgres user cannot enter $CLUSTER_DIR: PostgreSQL's files go to $PGROOT"
    fi
    local sock="$PGROOT/postgres-replica-2/.s.PGSQL.$REPLICA2_PORT"
    ((${#sock} < 100)) || die "socket path $sock is too long for a Unix socket; set a shorter CLUSTER_DIR"
}

write_env() {
    {
        echo "# written by deploy/local/cluster.sh up: the ports of this cluster"
        local v
        for v in PRIMARY_PORT REPLICA1_PORT REPLICA2_PORT PULSE_PRIMARY_PORT \
            PULSE_REPLICA1_PORT PULSE_REPLICA2_PORT PROMETHEUS_PORT HAPROXY_WRITE_PORT \
            HAPROXY_READ_PORT PULSE_CLUSTER_PORT DASHBOARD_PORT PGROOT PG_BINDIR; do
            printf '%s=%q\n' "$v" "${!v}"
        done
    } >"$envfile"
}

make_node_dir() {
    local dir
    dir=$(node_dir "$1")
    mkdir -p "$dir"
    chmod 700 "$dir"
    ((${#as_pg[@]} == 0)) || chown postgres: "$dir"
}

init_primary() {
    local node=postgres-primary data
    data=$(data_dir $node)
    make_node_dir $node
    say "initdb $node"
    pg "$PG_BINDIR/initdb" -D "$data" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    pg tee "$data/pg_hba.conf" >/dev/null <<'EOF'
# deploy/local/cluster.sh: the superuser over the node's private socket;
# everyone else, and replication, with a password over loopback.
local   all          all                  trust
host    all          all    127.0.0.1/32  scram-sha-256
host    replication  all    127.0.0.1/32  scram-sha-256
EOF
    pg tee -a "$data/postgresql.conf" >/dev/null <<'EOF'

# deploy/local/cluster.sh (copied to every standby by pg_basebackup)
listen_addresses = '127.0.0.1'
unix_socket_permissions = 0700
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
wal_log_hints = on          # lets pg_rewind bring an old primary back
EOF
    pg_start $node
    local pw=${PULSE_DB_PASSWORD//\'/\'\'}
    pg env -u PGPASSWORD psql -X -q -v ON_ERROR_STOP=1 -h "$(node_dir $node)" -p "$PRIMARY_PORT" \
        -U postgres -d postgres >/dev/null <<EOF
CREATE ROLE $DB_USER LOGIN SUPERUSER PASSWORD '$pw';
CREATE DATABASE $DB_NAME OWNER $DB_USER;
\\c $DB_NAME
SET ROLE $DB_USER;
$(cat "$root/deploy/seed.sql")
EOF
}

# clone NODE FROM: NODE becomes a streaming standby of FROM, in a fresh
# data directory, with its own slot on FROM and its name as application_name.
clone() {
    local node=$1 from=$2 data slot
    data=$(data_dir "$node")
    slot=$(slot_of "$node")
    make_node_dir "$node"
    pg rm -rf "$data"
    # A slot left by an earlier clone of this node would make -C fail.
    sql "$from" "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
                 WHERE slot_name = '$slot' AND NOT active" >/dev/null
    say "pg_basebackup $node from $from"
    pg env PGPASSWORD="$PULSE_DB_PASSWORD" "$PG_BINDIR/pg_basebackup" -D "$data" -R -X stream \
        -c fast -C -S "$slot" -d "$(conninfo "$(pg_port "$from")" "$node")" ||
        die "pg_basebackup of $node from $from failed"
    pg_start "$node"
}

print_summary() {
    local primary
    # shellcheck disable=SC2016 # the variable's name is printed, not its value
    local pwshow='"$PULSE_DB_PASSWORD"'
    primary=$(current_primary)
    # The seed's demo password is no secret; one of your own is not printed.
    [[ $PULSE_DB_PASSWORD != securepwd123 ]] || pwshow=securepwd123
    cat <<EOF

PostgreSQL HA cluster (database $DB_NAME, user $DB_USER):
  postgres-primary     127.0.0.1:$PRIMARY_PORT    pgpulse http://127.0.0.1:$PULSE_PRIMARY_PORT/metrics
  postgres-replica-1   127.0.0.1:$REPLICA1_PORT    pgpulse http://127.0.0.1:$PULSE_REPLICA1_PORT/metrics
  postgres-replica-2   127.0.0.1:$REPLICA2_PORT    pgpulse http://127.0.0.1:$PULSE_REPLICA2_PORT/metrics
  Dashboard            http://127.0.0.1:$DASHBOARD_PORT/  (pgpulse of the whole cluster; its metrics: http://127.0.0.1:$PULSE_CLUSTER_PORT/metrics)
  Prometheus           http://127.0.0.1:$PROMETHEUS_PORT  (targets: http://127.0.0.1:$PROMETHEUS_PORT/targets, alerts: /alerts)
  HAProxy writes       127.0.0.1:$HAPROXY_WRITE_PORT    (whichever node is the primary)
  HAProxy reads        127.0.0.1:$HAPROXY_READ_PORT    (round robin over the standbys; the primary if none is up)
  primary now: ${primary:-none}
  state, logs: $CLUSTER_DIR

Check replication as the seed does:
  PGPASSWORD=$pwshow psql -h 127.0.0.1 -p $(pg_port "${primary:-postgres-primary}") -U $DB_USER -d $DB_NAME -c \\
    "SELECT client_addr, usename, application_name, state, sync_state, write_lag, replay_lag FROM pg_stat_replication;"
  PGPASSWORD=$pwshow psql -h 127.0.0.1 -p $REPLICA1_PORT -U $DB_USER -d $DB_NAME -c "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn();"
  PGPASSWORD=$pwshow psql -h 127.0.0.1 -p $REPLICA2_PORT -U $DB_USER -d $DB_NAME -c "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn();"

Through HAProxy (the node that answers is named by its port):
  PGPASSWORD=$pwshow psql -h 127.0.0.1 -p $HAPROXY_WRITE_PORT -U $DB_USER -d $DB_NAME -c "SELECT inet_server_port(), pg_is_in_recovery();"
  PGPASSWORD=$pwshow psql -h 127.0.0.1 -p $HAPROXY_READ_PORT -U $DB_USER -d $DB_NAME -c "SELECT inet_server_port(), pg_is_in_recovery();"

Next: $0 status | failover | rejoin | down [--wipe]
EOF
}

all_running() {
    local n
    for n in "${NODES[@]}"; do
        is_running "$n" || return 1
        proc_alive "pgpulse-$n" "127.0.0.1:$(pulse_port "$n")" || return 1
    done
    proc_alive pgpulse-cluster "127.0.0.1:$PULSE_CLUSTER_PORT" || return 1
    proc_alive prometheus "127.0.0.1:$PROMETHEUS_PORT" || return 1
    proc_alive haproxy "$CLUSTER_DIR/haproxy/haproxy.cfg"
}

cmd_up() {
    if [[ -f $envfile ]] && all_running; then
        say "already running"
        print_summary
        return 0
    fi
    # A taken port fails before anything is installed, built or created.
    [[ -f $envfile ]] || check_ports
    "$root/deploy/deps.sh" build server cluster
    if [[ -z ${PGPULSE_BIN:-} ]]; then
        say "building pgpulse into build/"
        cmake -S "$root" -B "$root/build" >/dev/null
        cmake --build "$root/build" -j "$(nproc)" >/dev/null
        PGPULSE=$root/build/pgpulse
    else
        PGPULSE=$PGPULSE_BIN
    fi
    [[ -x $PGPULSE ]] || die "no pgpulse binary at $PGPULSE"

    mkdir -p "$CLUSTER_DIR/run" "$CLUSTER_DIR/log"
    if [[ ! -f $envfile ]]; then
        choose_pgroot
        mkdir -p "$PGROOT"
        ((${#as_pg[@]} == 0)) || chown postgres: "$PGROOT"
        write_env
        init_primary
        clone postgres-replica-1 postgres-primary
        clone postgres-replica-2 postgres-primary
    else
        # Restart what a `down` (without --wipe) stopped, in its last role.
        local n
        for n in "${NODES[@]}"; do
            if [[ -d $(data_dir "$n") ]] && ! is_running "$n"; then
                port_taken "$(pg_port "$n")" && die "port $(pg_port "$n") of $n is taken"
                say "starting $n"
                pg_start "$n"
            fi
        done
    fi
    local primary n
    primary=$(current_primary)
    [[ -n $primary ]] || die "no node is a primary; see $0 status"
    for n in "${NODES[@]}"; do
        [[ $n == "$primary" ]] || ! is_running "$n" ||
            wait_until 60 "$n to stream from $primary" streams_from "$n" "$primary"
    done
    for n in "${NODES[@]}"; do
        pulse_start "$n"
    done
    cluster_pulse_start
    prometheus_start
    haproxy_start
    # HAProxy counts a node as up until its first check, within a second.
    wait_until 60 "HAProxy's write port $HAPROXY_WRITE_PORT to reach $primary" \
        write_port_reaches "$primary"
    print_summary
}

# -- status ------------------------------------------------------------------

cmd_status() {
    [[ -f $envfile ]] || die "no cluster in $CLUSTER_DIR; start one with $0 up"
    local n bad=0 role
    printf '%-20s %-6s %-8s %s\n' NODE PORT ROLE DETAIL
    for n in "${NODES[@]}"; do
        if ! is_running "$n" || ! is_ready "$n"; then
            printf '%-20s %-6s %-8s %s\n' "$n" "$(pg_port "$n")" down "not running (log: $(node_dir "$n")/postgres.log)"
            bad=1
            continue
        fi
        role=$(role_of "$n")
        if [[ $role == primary ]]; then
            printf '%-20s %-6s %-8s %s\n' "$n" "$(pg_port "$n")" primary "streams to:"
            sql "$n" "SELECT format('    %s %s %s %s write_lag=%s replay_lag=%s',
                        application_name, client_addr, state, sync_state,
                        COALESCE(write_lag::text, '0'), COALESCE(replay_lag::text, '0'))
                        FROM pg_stat_replication ORDER BY application_name"
        else
            local rcv
            rcv=$(sql "$n" "SELECT format('%s from port %s, received %s, replayed %s',
                            status, sender_port, pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
                            FROM pg_stat_wal_receiver")
            [[ $rcv == streaming* ]] || bad=1
            printf '%-20s %-6s %-8s %s\n' "$n" "$(pg_port "$n")" standby "${rcv:-no WAL receiver}"
        fi
    done
    echo
    for n in "${NODES[@]}"; do
        local port up
        port=$(pulse_port "$n")
        if up=$(curl -fsS --max-time 2 "http://127.0.0.1:$port/metrics" 2>/dev/null | grep '^pg_up '); then
            printf '%-28s %s\n' "pgpulse $n" "http://127.0.0.1:$port/metrics  $up"
            [[ $up == "pg_up 1" ]] || bad=1
        else
            printf '%-28s %s\n' "pgpulse $n" "not answering on $port (log: $CLUSTER_DIR/log/pgpulse-$n.log)"
            bad=1
        fi
    done
    local nodes
    if nodes=$(curl -fsS --max-time 2 "http://127.0.0.1:$DASHBOARD_PORT/api/v1/status" 2>/dev/null); then
        # one "status" per node, in the document's order
        printf '%-28s %s\n' dashboard "http://127.0.0.1:$DASHBOARD_PORT/  nodes: $(grep -o '"status":"[a-z]*"' <<<"$nodes" |
            sed 's/"status":"\([a-z]*\)"/\1/' | sort | uniq -c | awk '{printf "%s%s %s", sep, $1, $2; sep=", "}')"
    else
        printf '%-28s %s\n' dashboard "not answering on $DASHBOARD_PORT (log: $CLUSTER_DIR/log/pgpulse-cluster.log)"
        bad=1
    fi
    if http_ok "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"; then
        local targets
        targets=$(curl -fsS --max-time 5 "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/targets?state=active" || true)
        printf '%-28s %s\n' prometheus "http://127.0.0.1:$PROMETHEUS_PORT  targets up: $(grep -o '"health":"up"' <<<"$targets" | wc -l) of $(grep -o '"health":' <<<"$targets" | wc -l) (not scraped yet: $(grep -o '"health":"unknown"' <<<"$targets" | wc -l))"
        local firing
        firing=$(curl -fsS --max-time 5 "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/alerts" |
            grep -o '"alertname":"[A-Za-z]*"[^}]*},"state":"firing"' | sed 's/"alertname":"\([A-Za-z]*\)".*/\1/' | sort | uniq -c |
            awk '{printf "%s%s(%s)", sep, $2, $1; sep=" "}' || true)
        printf '%-28s %s\n' "alerts firing" "${firing:-none}"
    else
        printf '%-28s %s\n' prometheus "not answering on $PROMETHEUS_PORT (log: $CLUSTER_DIR/log/prometheus.log)"
        bad=1
    fi
    if proc_alive haproxy "$CLUSTER_DIR/haproxy/haproxy.cfg"; then
        local w r
        w=$(lands_on "$HAPROXY_WRITE_PORT") || true
        r=$(lands_on "$HAPROXY_READ_PORT") || true
        [[ -n $w && $w == $(current_primary) ]] || bad=1
        [[ -n $r ]] || bad=1
        printf '%-28s %s\n' "haproxy writes" "127.0.0.1:$HAPROXY_WRITE_PORT  -> ${w:-no server (no node passes GET /primary yet)}"
        printf '%-28s %s\n' "haproxy reads" "127.0.0.1:$HAPROXY_READ_PORT  -> ${r:-no server} (this session; round robin)"
    else
        printf '%-28s %s\n' haproxy "not running (log: $CLUSTER_DIR/log/haproxy.log)"
        bad=1
    fi
    return $bad
}

# -- failover ------------------------------------------------------------------

cmd_failover() {
    [[ -f $envfile ]] || die "no cluster in $CLUSTER_DIR; start one with $0 up"
    local target=${1:-} old n
    [[ -z $target ]] || pg_port "$target" >/dev/null
    old=$(current_primary)
    if [[ -n $old ]]; then
        say "stopping the primary $old (the seed's simulated failure)"
        pg_stop "$old"
        echo "$old" >"$CLUSTER_DIR/old_primary"
    fi
    if [[ -z $target ]]; then
        for n in "${NODES[@]}"; do
            if is_running "$n" && [[ $(role_of "$n") == standby ]]; then
                target=$n
                break
            fi
        done
        [[ -n $target ]] || die "no running standby to promote"
    fi
    is_running "$target" || die "$target is not running"
    [[ $(role_of "$target") == standby ]] || die "$target is not a standby"
    say "promoting $target: SELECT pg_promote()"
    [[ $(sql "$target" "SELECT pg_promote(true, 60)") == t ]] || die "pg_promote() on $target failed"
    local promoted=$SECONDS
    wait_until 60 "$target to leave recovery" is_primary "$target"
    # It streams from nobody now; slots for the standbys that will follow it.
    sql "$target" "ALTER SYSTEM RESET primary_conninfo" >/dev/null
    sql "$target" "ALTER SYSTEM RESET primary_slot_name" >/dev/null
    sql "$target" "SELECT pg_reload_conf()" >/dev/null
    for n in "${NODES[@]}"; do
        [[ $n != "$target" && $n != "$old" ]] || continue
        is_running "$n" || continue
        local slot pw
        slot=$(slot_of "$n")
        sql "$target" "SELECT pg_create_physical_replication_slot('$slot', true)
                        WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = '$slot')" >/dev/null
        say "repointing $n to $target (primary_conninfo, reload)"
        pw=$(conninfo "$(pg_port "$target")" "$n")
        sql "$n" "ALTER SYSTEM SET primary_conninfo = '${pw//\'/\'\'}'" >/dev/null
        sql "$n" "ALTER SYSTEM SET primary_slot_name = '$slot'" >/dev/null
        sql "$n" "SELECT pg_reload_conf()" >/dev/null
        local deadline=$((SECONDS + 30))
        until streams_from "$n" "$target" 2>/dev/null; do
            if ((SECONDS >= deadline)); then
                say "$n does not stream after a reload; restarting it"
                pg_stop "$n"
                pg_start "$n"
                wait_until 60 "$n to stream from $target" streams_from "$n" "$target"
                break
            fi
            sleep 0.2
        done
    done
    if proc_alive haproxy "$CLUSTER_DIR/haproxy/haproxy.cfg"; then
        # pgpulse reads the role once per collection cycle (15 s), then one check.
        wait_until 60 "HAProxy's write port $HAPROXY_WRITE_PORT to reach $target" \
            write_port_reaches "$target"
        say "HAProxy's write port $HAPROXY_WRITE_PORT reaches $target ($((SECONDS - promoted)) s after the promotion)"
    fi
    say "$target is the primary; ${old:-the old primary} is stopped (bring it back with: $0 rejoin)"
}

# -- rejoin ------------------------------------------------------------------

cmd_rejoin() {
    [[ -f $envfile ]] || die "no cluster in $CLUSTER_DIR; start one with $0 up"
    local rewind=false node=""
    while (($#)); do
        case $1 in
        --rewind) rewind=true ;;
        -*) die "rejoin: unknown option $1" ;;
        *) node=$1 ;;
        esac
        shift
    done
    if [[ -z $node ]]; then
        [[ -f $CLUSTER_DIR/old_primary ]] || die "rejoin: name the node to rejoin (no failover recorded)"
        node=$(<"$CLUSTER_DIR/old_primary")
    fi
    pg_port "$node" >/dev/null
    local primary
    primary=$(current_primary)
    [[ -n $primary && $primary != "$node" ]] || die "rejoin: no other node is the primary; run $0 failover first"
    if is_running "$node" && streams_from "$node" "$primary"; then
        say "$node already streams from $primary"
        return 0
    fi
    pg_stop "$node"
    if $rewind; then
        local data slot
        data=$(data_dir "$node")
        slot=$(slot_of "$node")
        say "pg_rewind $node to $primary"
        pg env -u PGPASSWORD "$PG_BINDIR/pg_rewind" --target-pgdata="$data" --write-recovery-conf \
            --source-server="$(conninfo "$(pg_port "$primary")" "$node") dbname=postgres" ||
            die "pg_rewind failed; rejoin without --rewind re-clones $node instead"
        sql "$primary" "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
                        WHERE slot_name = '$slot' AND NOT active" >/dev/null
        sql "$primary" "SELECT pg_create_physical_replication_slot('$slot', true)" >/dev/null
        # pg_rewind copied the primary's postgresql.auto.conf; the last line wins.
        echo "primary_slot_name = '$slot'" | pg tee -a "$data/postgresql.auto.conf" >/dev/null
        pg_start "$node"
    else
        clone "$node" "$primary"
    fi
    wait_until 60 "$node to stream from $primary" streams_from "$node" "$primary"
    rm -f "$CLUSTER_DIR/old_primary"
    if proc_alive "pgpulse-$node" "127.0.0.1:$(pulse_port "$node")"; then
        wait_until 60 "pgpulse of $node to reconnect" pulse_sees "$node"
    fi
    say "$node streams from $primary"
}

# -- down --------------------------------------------------------------------

cmd_down() {
    local wipe=false
    case ${1:-} in
    "") ;;
    --wipe) wipe=true ;;
    *) die "down: unknown option $1" ;;
    esac
    if [[ ! -f $envfile ]]; then
        say "no cluster in $CLUSTER_DIR"
        return 0
    fi
    proc_stop haproxy "$CLUSTER_DIR/haproxy/haproxy.cfg"
    proc_stop prometheus "127.0.0.1:$PROMETHEUS_PORT"
    local n
    proc_stop pgpulse-cluster "127.0.0.1:$PULSE_CLUSTER_PORT"
    for n in "${NODES[@]}"; do
        proc_stop "pgpulse-$n" "127.0.0.1:$(pulse_port "$n")"
    done
    for n in "${NODES[@]}"; do
        pg_stop "$n"
    done
    if $wipe; then
        [[ -z ${PGROOT:-} ]] || rm -rf "$PGROOT"
        rm -rf "$CLUSTER_DIR"
        say "stopped; data removed"
    else
        say "stopped; data kept in $CLUSTER_DIR ($0 up starts it again)"
    fi
}

cmd=${1:-up}
(($# == 0)) || shift
case $cmd in
up) cmd_up "$@" ;;
status) cmd_status "$@" ;;
failover) cmd_failover "$@" ;;
rejoin) cmd_rejoin "$@" ;;
down) cmd_down "$@" ;;
-h | --help | help) usage ;;
*)
    usage >&2
    exit 2
    ;;
esac
