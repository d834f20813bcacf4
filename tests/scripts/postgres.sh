#!/usr/bin/env bash
# Starts Debian's PostgreSQL for the tests' "postgres" database (tests/settings.py) and
# Django's transaction suites on PostgreSQL (tests/django_suite/run.py). Called once by
# tests/scripts/test.sh, which exports what it prints.
#
# When PostgreSQL is up, prints one line on stdout, SIGNALTRACE_TEST_POSTGRES=1, and
# says what it found on stderr: the server answers on the default socket with peer
# authentication as role "root", and the database "signaltrace" exists (Django makes
# its test databases next to it). Otherwise it prints on stderr why not (not root, not
# installed, failed to start) and nothing on stdout, and the PostgreSQL tests skip.
#
# Never fails the run: it always returns 0. Idempotent, and quick when the server is
# already up (one psql call). It also drops the test databases of test runs that were
# killed before Django could drop them (named test_signaltrace_<pid>..., pid gone).
#
# By hand:  tests/scripts/postgres.sh
#           SIGNALTRACE_TEST_POSTGRES=1 .venv-newest/bin/python -m pytest tests/test_databases.py
set -uo pipefail

DATABASE=signaltrace
ROLE=root  # tests/settings.py and tests/django_suite/postgres_settings.py connect as root

say() { echo "postgres.sh: $*" >&2; }
unavailable() { say "$*; the PostgreSQL tests will skip"; exit 0; }

as_root_role() {  # as_root_role COMMAND...: a PostgreSQL client as role root, over the socket
  PGHOST="" PGPORT=5432 PGUSER=$ROLE PGCONNECT_TIMEOUT=5 "$@"
}
server_answers() { as_root_role psql -X -w -q -d postgres -tAc "select 1" >/dev/null 2>&1; }
sql() { as_root_role psql -X -w -q -d postgres -v ON_ERROR_STOP=1 -tAc "$1"; }

drop_stale_test_databases() {  # test_signaltrace_<pid>[_...] whose process is gone
  local name pid
  sql "select datname from pg_database where datname ~ '^test_${DATABASE}_[0-9]+(_|$)'" 2>/dev/null |
    while read -r name; do
      pid=${name#test_"${DATABASE}"_}
      pid=${pid%%_*}
      if ! kill -0 "$pid" 2>/dev/null; then
        # Refused while anything is connected: then it is not stale after all.
        sql "drop database if exists \"$name\"" >/dev/null 2>&1 && say "dropped stale test database $name"
      fi
    done
}

ready() {  # the database, the stale ones gone, then the one line
  if [ "$(sql "select 1 from pg_database where datname = '$DATABASE'" 2>/dev/null)" != 1 ] &&
    ! sql "create database $DATABASE" >/dev/null 2>&1 &&
    [ "$(sql "select 1 from pg_database where datname = '$DATABASE'" 2>/dev/null)" != 1 ]; then
    unavailable "could not create the database $DATABASE"
  fi
  drop_stale_test_databases
  local server_version
  server_version=$(sql "show server_version" 2>/dev/null)
  say "PostgreSQL ${server_version%% *} is up (socket, role $ROLE, database $DATABASE)"
  echo "SIGNALTRACE_TEST_POSTGRES=1"
  exit 0
}

if ! command -v psql >/dev/null 2>&1; then
  unavailable "PostgreSQL is not installed (no psql)"
fi
if [ "$(id -un)" = "$ROLE" ] && server_answers; then
  ready
fi
if [ "$(id -u)" -ne 0 ]; then
  unavailable "not root: cannot start PostgreSQL or connect as role $ROLE"
fi
if ! command -v pg_lsclusters >/dev/null 2>&1 || ! command -v pg_ctlcluster >/dev/null 2>&1; then
  unavailable "Debian's PostgreSQL server is not installed (no pg_lsclusters, pg_ctlcluster)"
fi

# The cluster on the default port (Debian's first cluster, e.g. "15 main"): version, name, status.
read -r version cluster status < <(pg_lsclusters -h 2>/dev/null | awk '$3 == 5432 { print $1, $2, $4; exit }')
if [ -z "${version:-}" ]; then
  unavailable "no PostgreSQL cluster on port 5432 (pg_lsclusters lists: $(pg_lsclusters -h 2>/dev/null | awk '{ print $1 "/" $2 ":" $3 }' | tr '\n' ' '))"
fi
started=""
if [ "$status" != online ]; then
  say "starting PostgreSQL $version/$cluster"
  # A concurrent start makes this one fail with "already running": pg_isready decides.
  started=$(pg_ctlcluster "$version" "$cluster" start 2>&1 | tail -n 1)
fi
if ! pg_isready -q -t 30 -p 5432; then
  unavailable "PostgreSQL $version/$cluster failed to start${started:+ ($started)}; see /var/log/postgresql/postgresql-$version-$cluster.log"
fi
if ! server_answers; then
  # Peer authentication maps the OS user root to the role root: make it a superuser,
  # so Django can create and drop its test databases.
  runuser -u postgres -- psql -X -q -d postgres -tAc \
    "do \$\$ begin if not exists (select from pg_roles where rolname = '$ROLE')
     then create role $ROLE superuser login; end if; end \$\$" >/dev/null 2>&1
fi
if ! server_answers; then
  unavailable "PostgreSQL $version/$cluster is up but role $ROLE cannot connect over the socket"
fi
ready
