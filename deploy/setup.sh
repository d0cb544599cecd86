#!/usr/bin/env bash
# Set up everything `make run` and `make test` need, on a fresh Debian machine
# or an already prepared one (idempotent; silent when there is nothing to do):
#
#   1. .venv with the project installed (`pip install -e '.[dev]'`), redone
#      only when pyproject.toml changes;
#   2. PostgreSQL answering where HUB_DATABASE_URL points;
#   3. RabbitMQ answering where HUB_AMQP_URL points (a comma-separated list);
#   4. the database HUB_DATABASE_URL names;
#   5. `hub migrate` (the HUB_NAMESPACE schema and its migrations);
#   6. with --browser: Chromium and its driver (Debian's chromium and
#      chromium-driver), for the dashboard's browser tests (`make test`);
#   7. with --browser too: Debian's docker-compose, with which the tests check
#      deploy/compose.yaml (`docker-compose config -q`, offline), unless
#      `docker-compose` or `docker compose` is already there (root only).
#
# A local server (localhost, 127.x, ::1) that does not answer is started if
# installed, and installed with apt-get first when we are root; a server on
# another host is only checked.
#
# Settings come from the environment; what it leaves unset is taken from
# deploy/demo/hub.env (or the file SETUP_ENV_FILE names).
#
#   deploy/setup.sh              do steps 1 to 5
#   deploy/setup.sh --browser    do steps 1 to 7 (what `make test` runs)
#   deploy/setup.sh --venv       step 1 only
#   deploy/setup.sh --print-env  print `export KEY=VALUE` for each setting the
#                                environment leaves unset (the Makefile evals it)
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"

say() { printf 'setup: %s\n' "$*" >&2; }
die() {
    printf 'setup: error: %s\n' "$1" >&2
    shift
    local line
    for line in "$@"; do printf 'setup:   %s\n' "$line" >&2; done
    exit 1
}

# --------------------------------------------------------------------------
# Settings: the environment wins over the env file.

env_file=${SETUP_ENV_FILE:-deploy/demo/hub.env}

# Print `export KEY=VALUE` (shell-quoted) for each KEY=VALUE line of the env
# file whose KEY (and KEY_FILE, the hub's secret-file form) the environment
# does not set.
env_defaults() {
    [[ -f $env_file ]] || die "no env file $env_file"
    local line key value
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line%$'\r'}
        [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
        line=${line#"${line%%[![:space:]]*}"}
        line=${line#export }
        [[ $line =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] \
            || die "$env_file: not a KEY=VALUE line: $line"
        key=${BASH_REMATCH[1]}
        value=${BASH_REMATCH[2]}
        if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then
            value=${BASH_REMATCH[1]}
        fi
        [[ -v $key || -v ${key}_FILE ]] && continue
        printf 'export %s=%q\n' "$key" "$value"
    done <"$env_file"
}

case ${1:-} in
    --print-env) env_defaults; exit 0 ;;
    --venv | --browser | "") ;;
    *) die "unknown option $1 (usage: deploy/setup.sh [--venv | --browser | --print-env])" ;;
esac
only_venv=false
[[ ${1:-} == --venv ]] && only_venv=true
want_browser=false
[[ ${1:-} == --browser ]] && want_browser=true

defaults=$(env_defaults)
eval "$defaults"

is_root() { [[ $(id -u) == 0 ]]; }
have() { command -v "$1" >/dev/null 2>&1; }

# Run apt-get quietly; its output is shown only when it fails.
apt_updated=false
apt_install() {
    local log
    log=$(mktemp)
    if ! $apt_updated; then
        apt-get update -q >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; die "apt-get update failed"; }
        apt_updated=true
    fi
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" \
        >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        rm -f "$log"
        die "apt-get install $* failed (output above)"
    fi
    rm -f "$log"
}

can_apt() { is_root && have apt-get; }

# --------------------------------------------------------------------------
# 1. Python and .venv

python_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; }

find_python() {
    local candidate
    for candidate in ${PYTHON:-} python3.11 python3.12 python3.13 python3; do
        if have "$candidate" && python_ok "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

make_venv() {
    local python
    if ! python=$(find_python); then
        if can_apt; then
            say "no Python 3.11+ found; installing python3 with apt-get"
            apt_install python3 python3-venv
            python=$(find_python) || die "python3 from apt is older than 3.11"
        else
            die "no Python 3.11 or newer found (tried python3.11, python3.12, python3.13, python3)" \
                "install one (Debian 12: apt-get install python3 python3-venv)," \
                "or set PYTHON to its path"
        fi
    fi
    say "creating .venv with $python ($("$python" -V 2>&1))"
    local log
    log=$(mktemp)
    if ! "$python" -m venv .venv >"$log" 2>&1; then
        rm -rf .venv
        if grep -q ensurepip "$log" && can_apt; then
            local version
            version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
            say "the venv module is missing; installing python3-venv with apt-get"
            if apt-cache show "python$version-venv" >/dev/null 2>&1; then
                apt_install python3-venv "python$version-venv"
            else
                apt_install python3-venv
            fi
            "$python" -m venv .venv >"$log" 2>&1 || { cat "$log" >&2; rm -rf .venv; rm -f "$log"; \
                die "$python -m venv .venv failed (output above)"; }
        else
            cat "$log" >&2
            rm -f "$log"
            die "$python -m venv .venv failed (output above)" \
                "on Debian: apt-get install python3-venv (as root)"
        fi
    fi
    rm -f "$log"
}

if [[ ! -x .venv/bin/python ]]; then
    make_venv
elif ! python_ok .venv/bin/python; then
    say ".venv/bin/python does not run or is older than 3.11; recreating .venv"
    rm -rf .venv
    make_venv
fi
py=$top/.venv/bin/python

# pip in .venv, its output shown only when it fails.
pip() {
    local log
    log=$(mktemp)
    if ! "$py" -m pip --disable-pip-version-check install "$@" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        rm -f "$log"
        die "pip install $* failed (output above)"
    fi
    rm -f "$log"
}

if [[ ! -f .venv/.stamp-pip ]]; then
    say "upgrading pip in .venv"
    pip --upgrade pip
    : >.venv/.stamp-pip
fi

want=$(sha256sum pyproject.toml | cut -d' ' -f1)
have_stamp=$(cat .venv/.stamp-install 2>/dev/null || true)
if [[ $want != "$have_stamp" || ! -x .venv/bin/hub ]]; then
    say "installing the project into .venv (pip install -e '.[dev]')"
    pip -e '.[dev]'
    printf '%s\n' "$want" >.venv/.stamp-install
fi

$only_venv && exit 0

# --------------------------------------------------------------------------
# Helpers for the servers

# A setting as the hub reads it: NAME, else the file NAME_FILE names, else the
# hub's default.
setting() { # name default
    local file=${1}_FILE
    if [[ -n ${!1:-} ]]; then
        printf '%s\n' "${!1}"
    elif [[ -n ${!file:-} ]]; then
        [[ -r ${!file} ]] || die "$file: cannot read ${!file}"
        tr -d '\r\n' <"${!file}"
    else
        printf '%s\n' "$2"
    fi
}
database_url=$(setting HUB_DATABASE_URL postgresql://postgres@127.0.0.1:5432/hub)
amqp_urls=$(setting HUB_AMQP_URL amqp://guest:guest@127.0.0.1:5672/)

# "host port user database local|remote" of a URL (no password: safe to print).
url_parts() {
    "$py" - "$1" <<'PY'
import sys
from urllib.parse import unquote, urlsplit

url = urlsplit(sys.argv[1].strip())
default_port = {"postgresql": 5432, "postgres": 5432, "amqp": 5672, "amqps": 5671}
try:
    port = url.port or default_port.get(url.scheme, 0)
except ValueError:
    sys.exit(f"setup: error: bad port in a {url.scheme or '?'}:// URL")
host = url.hostname or ""
local = host in ("", "localhost", "::1") or host.startswith("127.") or host.startswith("/")
user = unquote(url.username or "")
database = unquote(url.path.lstrip("/")) if url.scheme.startswith("postgres") else ""
print(host or "127.0.0.1", port, user or "-", database or "-", "local" if local else "remote")
PY
}

port_open() {
    "$py" - "$1" "$2" <<'PY'
import socket, sys

try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

# wait_for SECONDS CHECK ARGS...: true once CHECK succeeds, false after SECONDS.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 1
    done
}

systemd_running() { [[ -d /run/systemd/system ]] && have systemctl; }

# --------------------------------------------------------------------------
# 2. PostgreSQL

parts=$(url_parts "$database_url")
read -r pg_host pg_port pg_user pg_database pg_where <<<"$parts"
pg_at="$pg_host:$pg_port"

pg_answers() {
    if have pg_isready; then
        pg_isready -q -h "$pg_host" -p "$pg_port" -t 2
    else
        port_open "$pg_host" "$pg_port"
    fi
}

# "version name status" of every cluster (Debian's postgresql-common).
pg_clusters() {
    if have pg_lsclusters; then
        pg_lsclusters -h 2>/dev/null | awk '{print $1, $2, $4}'
    else
        local conf
        for conf in /etc/postgresql/*/*/postgresql.conf; do
            [[ -f $conf ]] || continue
            conf=${conf#/etc/postgresql/}
            echo "${conf%%/*} $(basename "$(dirname "$conf")") unknown"
        done
    fi
}

pg_cluster_ctl() { # version name action
    if systemd_running; then
        pg_ctlcluster "$1" "$2" "$3"
    else
        pg_ctlcluster --skip-systemctl-redirect "$1" "$2" "$3"
    fi
}

# A cluster this script installed or created: let the URL's user in over TCP
# from this machine without a password, as the demo URL expects (Debian's
# default asks for one).
pg_trust_local() { # version name
    local hba=/etc/postgresql/$1/$2/pg_hba.conf user=$pg_user marker="# added by connector-hub deploy/setup.sh"
    [[ $user == - ]] && user=postgres
    [[ -f $hba ]] || return 0
    grep -qF "$marker" "$hba" && return 0
    say "letting $user connect from 127.0.0.1 without a password ($hba)"
    { printf '%s\n' "$marker" "host all $user 127.0.0.1/32 trust" "host all $user ::1/128 trust"
      cat "$hba"; } >"$hba.new"
    chown --reference="$hba" "$hba.new"
    chmod --reference="$hba" "$hba.new"
    mv "$hba.new" "$hba"
}

pg_start_clusters() { # [fresh]: also apply pg_trust_local
    local version name status started=false
    while read -r version name status; do
        [[ -n $version ]] || continue
        [[ ${1:-} == fresh ]] && pg_trust_local "$version" "$name"
        case $status in
            online*)
                [[ ${1:-} == fresh ]] && pg_cluster_ctl "$version" "$name" reload
                ;;
            *binaries_missing*) ;;
            *)
                say "starting PostgreSQL cluster $version/$name"
                pg_cluster_ctl "$version" "$name" start || say "could not start cluster $version/$name"
                started=true
                ;;
        esac
    done < <(pg_clusters)
    $started || [[ ${1:-} == fresh ]]
}

pg_make_cluster() {
    local version
    version=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)
    [[ -n $version ]] && have pg_createcluster && is_root || return 1
    say "creating PostgreSQL cluster $version/main"
    pg_createcluster "$version" main >/dev/null
    pg_start_clusters fresh
}

ensure_postgres() {
    pg_answers && return 0
    if [[ $pg_where == remote ]]; then
        die "PostgreSQL does not answer at $pg_at (HUB_DATABASE_URL)" \
            "start it there, or point HUB_DATABASE_URL at a server that answers"
    fi
    if have pg_ctlcluster; then
        if [[ -z $(pg_clusters) ]]; then
            pg_make_cluster \
                || die "PostgreSQL is installed but has no cluster, and creating one needs root" \
                    "as root: pg_createcluster <version> main --start"
        elif ! pg_start_clusters; then
            die "PostgreSQL does not answer at $pg_at, yet every cluster is running" \
                "(pg_lsclusters shows their ports); set HUB_DATABASE_URL to the right one"
        fi
    elif can_apt; then
        say "PostgreSQL is not installed; installing it with apt-get (takes a minute)"
        apt_install postgresql
        # The package creates and starts a cluster where it can; finish the job.
        if [[ -z $(pg_clusters) ]]; then
            pg_make_cluster || true
        else
            pg_start_clusters fresh || true
        fi
    else
        die "PostgreSQL does not answer at $pg_at and is not installed (no pg_ctlcluster)" \
            "install and start it (Debian, as root: apt-get install postgresql)," \
            "run this script as root to have it do that, or set HUB_DATABASE_URL" \
            "to a server that answers"
    fi
    wait_for 30 pg_answers \
        || die "PostgreSQL still does not answer at $pg_at after 30 s" \
            "see /var/log/postgresql/ and pg_lsclusters"
}

ensure_postgres

# --------------------------------------------------------------------------
# 3. RabbitMQ

rabbit_local=()  # "host port" of the local endpoints
rabbit_all=()
IFS=',' read -r -a urls <<<"$amqp_urls"
for url in "${urls[@]}"; do
    [[ -n ${url//[[:space:]]/} ]] || continue
    parts=$(url_parts "$url")
    read -r host port _ _ where <<<"$parts"
    rabbit_all+=("$host $port")
    [[ $where == local ]] && rabbit_local+=("$host $port")
done
((${#rabbit_all[@]})) || die "HUB_AMQP_URL names no broker"

# True when every endpoint given ("host port" words) answers.
all_answer() {
    local endpoint
    for endpoint in "$@"; do
        # shellcheck disable=SC2086
        port_open $endpoint || return 1
    done
}

# Start the local broker. A failure is only reported: the caller waits for the
# port either way (the node may already be booting, say right after apt-get).
start_rabbit() {
    local out
    if systemd_running && systemctl cat rabbitmq-server.service >/dev/null 2>&1; then
        say "starting RabbitMQ (systemctl start rabbitmq-server)"
        out=$(systemctl start rabbitmq-server 2>&1) || say "systemctl start rabbitmq-server: $out"
    else
        say "starting RabbitMQ (rabbitmq-server -detached)"
        out=$(rabbitmq-server -detached 2>&1) || say "rabbitmq-server -detached failed: $out"
    fi
}

ensure_rabbit() {
    local endpoint shown=()
    for endpoint in "${rabbit_all[@]}"; do shown+=("${endpoint/ /:}"); done
    if ((${#rabbit_local[@]} == 0)); then
        for endpoint in "${rabbit_all[@]}"; do
            # shellcheck disable=SC2086
            port_open $endpoint && return 0
        done
        die "no RabbitMQ answers at ${shown[*]} (HUB_AMQP_URL)" \
            "start it there, or point HUB_AMQP_URL at a broker that answers"
    fi
    all_answer "${rabbit_local[@]}" && return 0
    if have rabbitmq-server; then
        start_rabbit
    elif can_apt; then
        say "RabbitMQ is not installed; installing rabbitmq-server with apt-get (takes a minute)"
        apt_install rabbitmq-server
        # The package starts it where it can (systemd); start it where it cannot.
        all_answer "${rabbit_local[@]}" || start_rabbit
    else
        die "RabbitMQ does not answer at ${shown[*]} and is not installed (no rabbitmq-server)" \
            "install and start it (Debian, as root: apt-get install rabbitmq-server)," \
            "run this script as root to have it do that, or set HUB_AMQP_URL" \
            "to a broker that answers"
    fi
    wait_for 60 all_answer "${rabbit_local[@]}" \
        || die "RabbitMQ still does not answer at ${shown[*]} after 60 s" \
            "see /var/log/rabbitmq/ (startup_err, rabbit@*.log); starting it needs root" \
            "or the rabbitmq user"
}

ensure_rabbit

# --------------------------------------------------------------------------
# 4. The database

if [[ $pg_database != - ]]; then
    "$py" - "$database_url" "$pg_where" <<'PY'
import asyncio, sys
from urllib.parse import unquote, urlsplit

import asyncpg

url, where = sys.argv[1].strip(), sys.argv[2]
parts = urlsplit(url)
name = unquote(parts.path.lstrip("/"))
server = parts._replace(path="/postgres").geturl()
at = f"{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"


async def main() -> int:
    try:
        connection = await asyncpg.connect(server, timeout=10)
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
        print(f"setup: error: PostgreSQL at {at} refused the login: {exc}", file=sys.stderr)
        if where == "local":
            user = parts.username or "postgres"
            print(
                "setup:   put a password in HUB_DATABASE_URL, or let the user in from this"
                " machine:\nsetup:   add `host all " + user + " 127.0.0.1/32 trust` at the top of"
                " pg_hba.conf (/etc/postgresql/*/main/) and reload PostgreSQL",
                file=sys.stderr,
            )
        return 1
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"setup: error: cannot connect to PostgreSQL at {at}: {exc}", file=sys.stderr)
        return 1
    try:
        if await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return 0
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            await connection.execute(f"CREATE DATABASE {quoted}")
        except asyncpg.DuplicateDatabaseError:
            return 0
        print(f"setup: created database {name!r} at {at}", file=sys.stderr)
        return 0
    except asyncpg.PostgresError as exc:
        print(f"setup: error: cannot create database {name!r} at {at}: {exc}", file=sys.stderr)
        return 1
    finally:
        await connection.close()


sys.exit(asyncio.run(main()))
PY
fi

# --------------------------------------------------------------------------
# 5. Migrations

out=$(.venv/bin/hub migrate 2>&1) || {
    printf '%s\n' "$out" >&2
    die "hub migrate failed (output above)"
}
[[ $out == *"up to date"* ]] || printf '%s\n' "$out" | sed 's/^/setup: /' >&2

# --------------------------------------------------------------------------
# 6. Chromium, for the browser tests (--browser only)

# The tests drive these two paths (tests/browser/conftest.py).
browser_ok() { [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; }

ensure_browser() {
    browser_ok && return 0
    if can_apt; then
        say "Chromium is not installed; installing chromium and chromium-driver with apt-get (takes a minute)"
        apt_install chromium chromium-driver
        browser_ok || die "apt-get installed chromium and chromium-driver, yet" \
            "/usr/bin/chromium or /usr/bin/chromedriver is missing"
    else
        die "the browser tests need /usr/bin/chromium and /usr/bin/chromedriver" \
            "install them (Debian, as root: apt-get install chromium chromium-driver)," \
            "or run this script as root to have it do that"
    fi
}

$want_browser && ensure_browser

# --------------------------------------------------------------------------
# 7. docker-compose, for the deploy files' test (--browser only)

# Either Compose answers; `config` needs no engine, so the test runs offline.
compose_ok() { have docker-compose || { have docker && docker compose version >/dev/null 2>&1; }; }

ensure_compose() {
    compose_ok && return 0
    if can_apt; then
        say "docker-compose is not installed; installing Debian's docker-compose with apt-get"
        apt_install --no-install-recommends docker-compose  # not docker.io: `config` needs no engine
        compose_ok || die "apt-get installed docker-compose, yet docker-compose does not run"
    else
        say "no docker-compose: tests/unit/test_deploy_files.py will fail on deploy/compose.yaml;" \
            "install it (Debian, as root: apt-get install docker-compose)"
    fi
}

$want_browser && ensure_compose
exit 0
