#!/usr/bin/env bash
# A local three-node RabbitMQ cluster for development and tests, beside the
# machine's own RabbitMQ node, which it never touches (see README.md here).
#
#   deploy/cluster/cluster.sh start     start hub1, hub2, hub3, join them, print HUB_AMQP_URL
#   deploy/cluster/cluster.sh stop      stop the three nodes and remove their folder
#   deploy/cluster/cluster.sh status    the nodes and the cluster; exit 0 when all three
#                                       run in one cluster, else 1
#   deploy/cluster/cluster.sh url       print HUB_AMQP_URL=... (starts nothing)
#   deploy/cluster/cluster.sh ctl N ARGS...
#                                       rabbitmqctl ARGS against node N (1, 2 or 3),
#                                       with that node's environment
#   deploy/cluster/cluster.sh kill N    kill -9 node N (a failover drill); `start`
#                                       brings it back into the cluster
#
# `start` when the cluster runs says so and exits 0; `stop` when nothing runs
# exits 0. Node N (1-3) is hubN@HOST: AMQP on 127.0.0.1:568N, the management
# plugin on 127.0.0.1:1568N, Erlang distribution on 127.0.0.1:2568N, sharing
# the machine's epmd (port 4369).
#
# Settings (environment):
#   HUB_CLUSTER_DIR      the nodes' folder: their HOME, cookie, configuration,
#                        data and logs (default /tmp/hub-cluster)
#   HUB_CLUSTER_HOST     the host part of the node names (default localhost)
#   HUB_CLUSTER_TIMEOUT  seconds a node may take to start (default 90)
#
# It calls the scripts in /usr/lib/rabbitmq/bin directly (the /usr/sbin
# wrappers switch to the rabbitmq user and read the system cookie), each with
# a clean environment naming the node's own files, so that nothing of
# /etc/rabbitmq, /var/lib/rabbitmq or the caller's HOME is read or written.
set -euo pipefail

say() { printf 'cluster: %s\n' "$*" >&2; }
die() {
    printf 'cluster: error: %s\n' "$1" >&2
    shift
    local line
    for line in "$@"; do printf 'cluster:   %s\n' "$line" >&2; done
    exit 1
}

usage="usage: deploy/cluster/cluster.sh start | stop | status | url | ctl N ARGS... | kill N"

bin=/usr/lib/rabbitmq/bin
dir=${HUB_CLUSTER_DIR:-/tmp/hub-cluster}
host=${HUB_CLUSTER_HOST:-localhost}
start_timeout=${HUB_CLUSTER_TIMEOUT:-90}
nodes=(1 2 3)
# A file in the folder that says it is ours: `stop` removes only such a folder.
marker=.hub-cluster

[[ $dir == /* ]] || dir=$PWD/$dir
dir=${dir%/}
[[ $dir =~ ^/[A-Za-z0-9_./-]+$ && $dir != *..* ]] \
    || die "HUB_CLUSTER_DIR must be a plain path (letters, digits, _ . / -), not ${dir@Q}"
case $dir in
    /tmp | /var | /var/* | /etc | /etc/* | /usr | /usr/* | /root | /home | "${HOME:-/root}")
        die "HUB_CLUSTER_DIR=$dir is no place for the cluster's files; use a folder of its own" ;;
esac
[[ $host =~ ^[A-Za-z0-9.-]+$ ]] || die "HUB_CLUSTER_HOST must be a host name, not ${host@Q}"
[[ $start_timeout =~ ^[1-9][0-9]*$ ]] || die "HUB_CLUSTER_TIMEOUT must be whole seconds"

node_name() { printf 'hub%s@%s' "$1" "$host"; }
amqp_port() { printf '%s' $((5680 + $1)); }
http_port() { printf '%s' $((15680 + $1)); }
dist_port() { printf '%s' $((25680 + $1)); }
pid_file() { printf '%s/hub%s/rabbitmq.pid' "$dir" "$1"; }

amqp_urls() {
    local n urls=()
    for n in "${nodes[@]}"; do urls+=("amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/"); done
    local IFS=,
    printf 'HUB_AMQP_URL=%s\n' "${urls[*]}"
}

# --------------------------------------------------------------------------
# A node's environment: every file and port of its own, nothing from /etc.

# The environment a node and its rabbitmqctl run with, in the array `vars`.
node_vars() {
    local n=$1 nd=$dir/hub$1
    vars=(
        PATH=/usr/bin:/bin:/usr/sbin:/sbin
        HOME="$dir"
        LANG=C.UTF-8
        LC_ALL=C.UTF-8
        RABBITMQ_CONF_ENV_FILE="$nd/rabbitmq-env.conf"
        RABBITMQ_CONFIG_FILE="$nd/rabbitmq.conf"
        RABBITMQ_ADVANCED_CONFIG_FILE="$nd/advanced.config"
        RABBITMQ_ENABLED_PLUGINS_FILE="$nd/enabled_plugins"
        RABBITMQ_NODENAME="$(node_name "$n")"
        RABBITMQ_USE_LONGNAME=false
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
        RABBITMQ_NODE_PORT="$(amqp_port "$n")"
        RABBITMQ_DIST_PORT="$(dist_port "$n")"
        RABBITMQ_MNESIA_BASE="$nd/mnesia"
        RABBITMQ_LOG_BASE="$nd/log"
        RABBITMQ_PID_FILE="$(pid_file "$n")"
        # Erlang distribution (the node's and rabbitmqctl's) on loopback only.
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
        "RABBITMQ_CTL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
        ERL_EPMD_ADDRESS=127.0.0.1
    )
}

# Run a command with node N's environment, and nothing of the caller's.
with_node() {
    local n=$1
    shift
    node_vars "$n"
    env -i "${vars[@]}" "$@"
}

ctl() {
    local n=$1
    shift
    with_node "$n" "$bin/rabbitmqctl" -n "$(node_name "$n")" "$@"
}

write_node_files() {
    local n=$1 nd=$dir/hub$1 v
    mkdir -p "$nd/mnesia" "$nd/log"
    node_vars "$n"
    {
        printf '# %s, written by deploy/cluster/cluster.sh: the environment the node runs with.\n' \
            "$(node_name "$n")"
        for v in "${vars[@]}"; do printf "%s='%s'\n" "${v%%=*}" "${v#*=}"; done
    } >"$nd/rabbitmq-env.conf"
    cat >"$nd/rabbitmq.conf" <<EOF
# $(node_name "$n"), written by deploy/cluster/cluster.sh.
listeners.tcp.local = 127.0.0.1:$(amqp_port "$n")
management.tcp.ip = 127.0.0.1
management.tcp.port = $(http_port "$n")
cluster_partition_handling = pause_minority
cluster_formation.target_cluster_size_hint = ${#nodes[@]}
log.file.level = info
log.console = false
EOF
    # RabbitMQ 3.10 has no rabbitmq.conf key for the initial replica count of a
    # quorum queue: it is the declare's x-quorum-initial-group-size, else the
    # rabbit application's quorum_cluster_size (default 3), set here.
    cat >"$nd/advanced.config" <<EOF
%% $(node_name "$n"), written by deploy/cluster/cluster.sh.
[{rabbit, [{quorum_cluster_size, ${#nodes[@]}}]}].
EOF
    # The management plugin: hub1 starts with it; the others are given it when
    # they join hub1, between stop_app and start_app (with it running, stop_app
    # takes 5 s longer).
    if ((n == 1)); then
        printf '[rabbitmq_management].\n' >"$nd/enabled_plugins"
    else
        printf '[].\n' >"$nd/enabled_plugins"
    fi
}

make_folder() {
    mkdir -p "$dir"
    chmod 700 "$dir"
    : >"$dir/$marker"
    local cookie
    cookie=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')
    (umask 077 && printf '%s' "$cookie" >"$dir/.erlang.cookie")
    chmod 600 "$dir/.erlang.cookie"
    local n
    for n in "${nodes[@]}"; do write_node_files "$n"; done
}

# Remove the folder, if it is ours.
remove_folder() {
    [[ -e $dir ]] || return 0
    [[ -f $dir/$marker ]] || die "$dir is not a folder this script made (no $marker in it); not removing it"
    rm -rf -- "$dir"
}

# --------------------------------------------------------------------------
# Which nodes run: by their pid file, and only a process whose environment
# names that pid file counts (so that a reused pid is never taken for ours).

# Whether process PID is the node whose pid file is FILE.
is_node() {
    [[ -r /proc/$1/environ ]] \
        && tr '\0' '\n' 2>/dev/null <"/proc/$1/environ" | grep -qxF "RABBITMQ_PID_FILE=$2"
}

node_pid() {
    local file pid
    file=$(pid_file "$1")
    [[ -s $file ]] || return 1
    read -r pid <"$file" || true
    [[ $pid =~ ^[0-9]+$ ]] && is_node "$pid" "$file" || return 1
    printf '%s' "$pid"
}

running() { node_pid "$1" >/dev/null; }

# The nodes in the array `out` that node N's cluster_status lists under KEY
# (running_nodes, disk_nodes).
cluster_nodes() {
    local n=$1 key=$2 json list
    out=()
    json=$(ctl "$n" -q cluster_status --formatter json 2>/dev/null) || return 1
    list=$(grep -o "\"$key\":\[[^]]*\]" <<<"$json") || return 0
    mapfile -t out < <(grep -o '"[^"]*@[^"]*"' <<<"$list" | tr -d '"')
}

clustered() {
    local n want
    running 1 || return 1
    cluster_nodes 1 running_nodes || return 1
    for n in "${nodes[@]}"; do
        want=$(node_name "$n")
        [[ " ${out[*]} " == *" $want "* ]] || return 1
    done
}

port_taken() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# --------------------------------------------------------------------------
# start

launched=() # node -> pid of the process that runs it
fresh=false # whether start made the folder anew

# Die unless the ports of the nodes given are free.
check_ports() {
    local n port
    for n in "$@"; do
        for port in "$(amqp_port "$n")" "$(http_port "$n")" "$(dist_port "$n")"; do
            port_taken "$port" || continue
            die "port $port, which $(node_name "$n") needs, is taken by another program" \
                "$(ss -Hltnp "sport = :$port" 2>/dev/null | head -n 1)"
        done
    done
}

launch() {
    local n=$1 nd=$dir/hub$1
    node_vars "$n"
    # Its own session (no Ctrl-C of the caller reaches it), no terminal, and
    # none of the caller's pipes (nor the lock, fd 9) held open.
    setsid env -i "${vars[@]}" "$bin/rabbitmq-server" </dev/null >>"$nd/log/startup.log" 2>&1 9<&- &
    launched[n]=$!
}

listening() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Wait until node N answers: its AMQP port first (cheap to poll), then
# rabbitmqctl await_startup.
await_node() {
    local n=$1 deadline=$((SECONDS + start_timeout)) log=$dir/hub$1/log/startup.log
    until listening "$(amqp_port "$n")" && ctl "$n" -q await_startup -t 10 >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            tail -n 20 "$log" >&2 || true
            die "$(node_name "$n") did not start within $start_timeout s (its startup output above)" \
                "its logs: $dir/hub$n/log/"
        fi
        if [[ -n ${launched[n]:-} ]] && ! kill -0 "${launched[n]}" 2>/dev/null; then
            tail -n 20 "$log" >&2 || true
            die "$(node_name "$n") stopped while starting (its startup output above)" \
                "its logs: $dir/hub$n/log/"
        fi
        sleep 0.5
    done
}

# Run `CMD N` for each node N given, at once; fail if any fails.
each() {
    local cmd=$1 n pids=() failed=0
    shift
    for n in "$@"; do
        "$cmd" "$n" &
        pids+=($!)
    done
    for n in "${pids[@]}"; do wait "$n" || failed=1; done
    return $failed
}

# Run a command; show what it printed only if it fails.
quietly() {
    local output
    output=$("$@" 2>&1) && return 0
    local status=$?
    printf '%s\n' "$output" >&2
    return $status
}

stop_app() { quietly ctl "$1" -q stop_app; }
start_app() { quietly ctl "$1" -q start_app; }

# Join the nodes of hub1's cluster that are not members yet (all but hub1 when
# the folder is new): stop_app, join_cluster hub1, start_app. They stop and
# start at once; they join one after the other.
join() {
    local n first joining=()
    first=$(node_name 1)
    for n in "${nodes[@]:1}"; do
        if ! $fresh; then
            cluster_nodes "$n" disk_nodes || die "cannot read the cluster status of $(node_name "$n")"
            [[ " ${out[*]} " == *" $first "* ]] && continue
        fi
        joining+=("$n")
    done
    ((${#joining[@]})) || return 0
    say "joining $(for n in "${joining[@]}"; do printf '%s ' "$(node_name "$n")"; done)to $first"
    each stop_app "${joining[@]}" || die "rabbitmqctl stop_app failed"
    for n in "${joining[@]}"; do
        # Its management plugin too, from start_app on.
        printf '[rabbitmq_management].\n' >"$dir/hub$n/enabled_plugins"
        # (The nodes log "Failed to create a tracked connection table for node
        # ...: node_not_running" for it: harmless, it makes them at start_app.)
        quietly ctl "$n" -q join_cluster "$first" || die "$(node_name "$n") could not join $first"
    done
    each start_app "${joining[@]}" || die "rabbitmqctl start_app failed"
}

# The management plugin, on each node that lacks it (written to the node's own
# enabled_plugins file).
enable_management() {
    local n pids=()
    for n in "${nodes[@]}"; do
        grep -q rabbitmq_management "$dir/hub$n/enabled_plugins" && continue
        with_node "$n" "$bin/rabbitmq-plugins" -n "$(node_name "$n")" -q \
            enable rabbitmq_management >/dev/null &
        pids+=($!)
    done
    ((${#pids[@]} == 0)) || wait "${pids[@]}"
}

failed_start() {
    local n stopped=0 deadline=$((SECONDS + 30))
    say "stopping the nodes it started; their logs stay in $dir/hub*/log/"
    stop_nodes
    # A node that had not yet written its pid file: by the pid of the process
    # started for it (rabbitmq-server, which stops its node on TERM).
    for n in "${!launched[@]}"; do
        kill -TERM "${launched[n]}" 2>/dev/null || continue
        while kill -0 "${launched[n]}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    done
}

start() {
    if clustered; then
        say "the cluster is already running: ${nodes[*]/#/hub} (HUB_CLUSTER_DIR=$dir)"
        amqp_urls
        return 0
    fi
    local n began=$SECONDS up=() down=()
    fresh=false
    for n in "${nodes[@]}"; do
        if running "$n"; then up+=("$n"); else down+=("$n"); fi
    done
    if ((${#up[@]} == 0)); then
        if [[ -e $dir ]]; then
            say "removing the leftovers of an earlier cluster in $dir"
            remove_folder
        fi
        make_folder
        fresh=true
        # A new cluster that fails to start is stopped again; its logs stay.
        trap 'failed_start' EXIT
    fi
    if ((${#down[@]})); then
        say "starting $(for n in "${down[@]}"; do printf '%s ' "$(node_name "$n")"; done)in $dir"
    fi
    check_ports "${down[@]}"
    for n in "${down[@]}"; do launch "$n"; done
    each await_node "${nodes[@]}" || exit 1
    join
    enable_management
    clustered || {
        ctl 1 cluster_status >&2 || true
        die "the three nodes run but do not form one cluster (hub1's cluster status above)"
    }
    trap - EXIT
    say "three nodes running in one cluster after $((SECONDS - began)) s;" \
        "management on http://127.0.0.1:$(http_port 1)/ (and :$(http_port 2), :$(http_port 3)), guest/guest"
    amqp_urls
}

# --------------------------------------------------------------------------
# stop

# Stop the nodes that run: rabbitmqctl stop, then, for what is left, TERM and
# KILL by the pids their pid files named. Sets `stopped` to how many ran.
stop_nodes() {
    local n pid pids=() waiting=()
    for n in "${nodes[@]}"; do
        if pid=$(node_pid "$n"); then pids[n]=$pid; fi
    done
    stopped=${#pids[@]}
    # A stopping node removes its pid file before its process ends: so the
    # pids were read first, and each is waited for until it has gone.
    for n in "${!pids[@]}"; do
        ctl "$n" -q stop >/dev/null 2>&1 &
        waiting+=($!)
    done
    ((${#waiting[@]} == 0)) || wait "${waiting[@]}" || true
    local deadline=$((SECONDS + 30)) file
    for n in "${!pids[@]}"; do
        pid=${pids[n]}
        file=$(pid_file "$n")
        while is_node "$pid" "$file"; do
            if ((SECONDS >= deadline)); then
                say "$(node_name "$n") (pid $pid) did not stop; killing it"
                kill -KILL "$pid" 2>/dev/null || true
            elif ((SECONDS >= deadline - 15)); then
                kill -TERM "$pid" 2>/dev/null || true
            fi
            sleep 0.2
        done
    done
}

stop() {
    local began=$SECONDS stopped=0
    stop_nodes
    if [[ -e $dir ]]; then
        remove_folder
        say "stopped the cluster and removed $dir ($((SECONDS - began)) s)"
    elif ((stopped)); then
        say "stopped the cluster ($((SECONDS - began)) s)"
    else
        say "no cluster is running"
    fi
}

# --------------------------------------------------------------------------
# status

status() {
    local n pid state members=() answering=0
    if [[ ! -f $dir/$marker ]]; then
        echo "no cluster in $dir"
        return 1
    fi
    if running 1 && cluster_nodes 1 running_nodes; then members=("${out[@]}"); fi
    for n in "${nodes[@]}"; do
        if ! pid=$(node_pid "$n"); then
            state="stopped"
        elif [[ " ${members[*]} " == *" $(node_name "$n") "* ]]; then
            state="running (pid $pid)"
            answering=$((answering + 1))
        else
            state="process alive (pid $pid), not running in hub1's cluster"
        fi
        printf '%-20s amqp 127.0.0.1:%s  management http://127.0.0.1:%s/  %s\n' \
            "$(node_name "$n")" "$(amqp_port "$n")" "$(http_port "$n")" "$state"
    done
    if ((answering == ${#nodes[@]})); then
        echo "cluster: ${members[*]} running"
        amqp_urls
        return 0
    fi
    echo "cluster: not all three nodes run in one cluster"
    return 1
}

# --------------------------------------------------------------------------

[[ -x $bin/rabbitmq-server && -x $bin/rabbitmqctl ]] \
    || die "RabbitMQ is not installed ($bin/rabbitmq-server is missing)" \
        "install it (Debian, as root: apt-get install rabbitmq-server)"

# One start or stop at a time (the lock is the script file's, fd 9).
lock() {
    exec 9<"${BASH_SOURCE[0]}"
    flock -w 300 9 || die "another start or stop of the cluster did not finish within 300 s"
}

case ${1:-} in
    start) lock; start ;;
    stop) lock; stop ;;
    status) status ;;
    url) amqp_urls ;;
    ctl)
        [[ ${2:-} =~ ^[123]$ ]] || die "$usage"
        [[ -f $dir/$marker ]] || die "no cluster in $dir (deploy/cluster/cluster.sh start)"
        n=$2
        shift 2
        ctl "$n" "$@"
        ;;
    kill)
        [[ ${2:-} =~ ^[123]$ && $# == 2 ]] || die "$usage"
        pid=$(node_pid "$2") || die "$(node_name "$2") is not running"
        kill -KILL "$pid"
        say "killed $(node_name "$2") (pid $pid)"
        ;;
    *) die "$usage" ;;
esac
