#!/usr/bin/env bash
# Sets up carecontracts from nothing but Python 3.11, then runs the example or the tests.
#   bash scripts/dev.sh example   # install, build the example workspace, run the year's payments and a month's cycle
#   bash scripts/dev.sh test      # install (with Spark, Java, Chromium and PostgreSQL), run the whole test suite
set -euo pipefail
cd "$(dirname "$0")/.."

pip_install() {
    # Quiet when it works; on failure show pip's output (less its notes on unused indexes).
    local log
    log=$(mktemp)
    if ! .venv/bin/python -m pip install --quiet "$@" >"$log" 2>&1; then
        grep -v "is ignored: it is neither" "$log" >&2
        rm -f "$log"
        echo "set-up failed: pip install $*" >&2
        exit 1
    fi
    rm -f "$log"
}

ensure_venv() {
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    pip_install --upgrade pip
    pip_install -e ".[$1]"
}

ensure_java() {
    # Spark 4 needs Java 17 or newer.
    if java -version 2>&1 | grep -Eq 'version "(1[7-9]|2[0-9])'; then
        return
    fi
    echo "Installing Java 17 for the Spark tests..." >&2
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openjdk-17-jre-headless >/dev/null
}

ensure_system_packages() {
    # Debian's Chromium for the browser tests (a test tool's own browser download cannot be used)
    # and Debian's PostgreSQL, on which the records store is tested as well as on SQLite.
    local missing=()
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || missing+=(postgresql)
    if [ ${#missing[@]} -eq 0 ]; then
        return
    fi
    echo "Installing ${missing[*]} for the tests..." >&2
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
}

start_postgres() {
    # A throwaway server for the tests: a fresh cluster in a temporary folder, reached only by
    # the Unix socket in it, trusting local users, gone when this script exits. PostgreSQL will
    # not run as root, so as root it runs as the postgres user.
    local bin owner
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    PG_DIR=$(mktemp -d /tmp/carecontracts-pg.XXXXXX)
    if [ "$(id -u)" = 0 ]; then
        owner=postgres
        chown postgres: "$PG_DIR"
        PG_AS=(runuser -u postgres --)
    else
        owner=$(id -un)
        PG_AS=()
    fi
    PG_BIN=$bin
    trap stop_postgres EXIT
    # Durability is no concern for a server that lives as long as the tests: no fsync.
    if ! (cd "$PG_DIR" && ${PG_AS[@]+"${PG_AS[@]}"} "$bin/initdb" -D "$PG_DIR/data" -U "$owner" --auth=trust \
            --encoding=UTF8 --locale=C --no-sync >"$PG_DIR/initdb.log" 2>&1); then
        cat "$PG_DIR/initdb.log" >&2
        echo "set-up failed: initdb for the PostgreSQL tests" >&2
        exit 1
    fi
    if ! (cd "$PG_DIR" && ${PG_AS[@]+"${PG_AS[@]}"} "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
            -o "-c listen_addresses='' -k $PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >/dev/null 2>&1); then
        cat "$PG_DIR/server.log" >&2
        echo "set-up failed: could not start PostgreSQL for the tests" >&2
        exit 1
    fi
    export CARECONTRACTS_TEST_POSTGRES="postgresql+psycopg://$owner@/postgres?host=$PG_DIR"
}

stop_postgres() {
    # Stops the tests' server and removes its folder, whatever the tests did.
    if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ]; then
        (cd "$PG_DIR" && ${PG_AS[@]+"${PG_AS[@]}"} "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1) || true
        rm -rf "$PG_DIR"
    fi
}

case "${1:-}" in
    example)
        ensure_venv dev
        rm -rf example
        .venv/bin/carecontracts init example
        .venv/bin/carecontracts load --workspace example
        .venv/bin/carecontracts pay year --workspace example --xlsx example/statements-2025-26.xlsx
        # The month's cycle: April to June closed, a resubmission, a challenge upheld, an invoice that differs.
        .venv/bin/python scripts/cycle_example.py example --xlsx example/statements-2025-26.xlsx
        ;;
    test)
        ensure_java
        ensure_system_packages
        ensure_venv "dev,spark"
        start_postgres
        # Two processes: much of the suite waits on Spark, subprocesses and files, so both cores stay busy.
        # Tests of one module share a process, so a module's fixtures are built once.
        .venv/bin/python -m pytest -q -n 2 --dist loadscope
        ;;
    *)
        echo "usage: bash scripts/dev.sh example|test" >&2
        exit 64
        ;;
esac
