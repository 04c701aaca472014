#!/usr/bin/env python3
"""Times `placement import`, `import --verify`, `export` and `export --verify`
on a large upstream database.

Makes an upstream Placement 16.0 schema with upstream's own
`placement-manage db sync` (from its virtualenv), fills it with SQL:
PROVIDERS compute nodes with VCPU, MEMORY_MB and DISK_GB inventory, two
traits and one aggregate each, and ALLOCATIONS allocations (two classes per
consumer, consumers of 100 projects and users), imports it into a fresh
database of this server, verifies, exports to a second fresh upstream
schema and verifies that. Prints the seconds of each step and exits 1 if a
step fails.

    cargo build --release
    tools/import_bench.py --binary target/release/placement             # PostgreSQL source
    tools/import_bench.py --binary target/release/placement --mysql     # MariaDB source

Needs upstream's virtualenv (../shared/bench/upstream/setup.sh; VENV),
psql, and for --mysql the mysql client and MariaDB on 127.0.0.1:3306.
"""
import argparse
import os
import subprocess
import sys
import time

PG = 'postgresql+psycopg2://root@127.0.0.1:5432/'
MY = 'mysql+pymysql://root@127.0.0.1:3306/'


def psql(database, sql):
    subprocess.run(['psql', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-U', 'root',
                    '-d', database, '-c', sql], check=True, stdout=subprocess.DEVNULL)


def mysql(sql, database=None):
    command = ['mysql', '-uroot', '-h127.0.0.1']
    if database:
        command.append(database)
    subprocess.run(command + ['-e', sql], check=True)


def fresh(kind, name):
    if kind == 'mysql':
        mysql('DROP DATABASE IF EXISTS %s; CREATE DATABASE %s' % (name, name))
        return MY + name
    psql('postgres', 'DROP DATABASE IF EXISTS %s' % name)
    psql('postgres', 'CREATE DATABASE %s' % name)
    return PG + name


def db_sync(venv, url):
    env = dict(os.environ, OS_PLACEMENT_DATABASE__CONNECTION=url)
    subprocess.run([os.path.join(venv, 'bin', 'placement-manage'), '--config-file', os.devnull,
                    'db', 'sync'], check=True, env=env)


def fill_sql(kind, providers, allocations):
    consumers = allocations // 2
    aggregates = max(providers // 100, 1)
    if kind == 'mysql':
        series = lambda n: '(SELECT seq AS i FROM seq_1_to_%d)' % n
        uuid_of = lambda expr: ("CONCAT_WS('-', SUBSTR(MD5(%s),1,8), SUBSTR(MD5(%s),9,4), "
                                "SUBSTR(MD5(%s),13,4), SUBSTR(MD5(%s),17,4), SUBSTR(MD5(%s),21,12))"
                                % ((expr,) * 5))
        text = lambda expr: 'CAST(%s AS CHAR)' % expr
        concat = lambda a, b: 'CONCAT(%s, %s)' % (a, b)
        now = 'NOW()'
        first = 'SET SESSION sql_mode = CONCAT(@@sql_mode, \',NO_AUTO_VALUE_ON_ZERO\');'
    else:
        series = lambda n: '(SELECT i FROM generate_series(1, %d) i)' % n
        uuid_of = lambda expr: 'md5(%s)::uuid::text' % expr
        text = lambda expr: '%s::text' % expr
        concat = lambda a, b: '(%s || %s)' % (a, b)
        now = 'now()'
        first = ''
    return ''.join([
        first,
        "INSERT INTO resource_classes (id, name, created_at) VALUES "
        "(0, 'VCPU', %s), (1, 'MEMORY_MB', %s), (2, 'DISK_GB', %s);" % (now, now, now),
        "INSERT INTO traits (id, name, created_at) VALUES "
        "(1, 'HW_CPU_X86_AVX2', %s), (2, 'CUSTOM_BENCH', %s);" % (now, now),
        "INSERT INTO resource_providers (id, uuid, name, generation, root_provider_id, created_at) "
        "SELECT i, %s, %s, 5, i, %s FROM %s s;"
        % (uuid_of(concat("'rp'", text('i'))), concat("'cn'", text('i')), now, series(providers)),
        "INSERT INTO inventories (resource_provider_id, resource_class_id, total, reserved, "
        "min_unit, max_unit, step_size, allocation_ratio, created_at) "
        "SELECT s.i, c.i - 1, 1000000, 0, 1, 1000000, 1, 1.5, %s FROM %s s, %s c;"
        % (now, series(providers), series(3)),
        "INSERT INTO placement_aggregates (id, uuid, created_at) SELECT i, %s, %s FROM %s s;"
        % (uuid_of(concat("'agg'", text('i'))), now, series(aggregates)),
        "INSERT INTO resource_provider_aggregates (resource_provider_id, aggregate_id, created_at) "
        "SELECT i, 1 + MOD(i, %d), %s FROM %s s;" % (aggregates, now, series(providers)),
        "INSERT INTO resource_provider_traits (trait_id, resource_provider_id, created_at) "
        "SELECT t.i, s.i, %s FROM %s s, %s t;" % (now, series(providers), series(2)),
        "INSERT INTO projects (id, external_id, created_at) SELECT i, %s, %s FROM %s s;"
        % (concat("'project-'", text('i')), now, series(100)),
        "INSERT INTO users (id, external_id, created_at) SELECT i, %s, %s FROM %s s;"
        % (concat("'user-'", text('i')), now, series(100)),
        "INSERT INTO consumer_types (id, name, created_at) VALUES (1, 'INSTANCE', %s);" % now,
        "INSERT INTO consumers (id, uuid, project_id, user_id, generation, consumer_type_id, "
        "created_at) SELECT i, %s, 1 + MOD(i, 100), 1 + MOD(i, 100), 1, 1, %s FROM %s s;"
        % (uuid_of(concat("'c'", text('i'))), now, series(consumers)),
        "INSERT INTO allocations (resource_provider_id, consumer_id, resource_class_id, used, "
        "created_at) SELECT 1 + MOD(s.i, %d), %s, k.i - 1, 1, %s FROM %s s, %s k;"
        % (providers, uuid_of(concat("'c'", text('s.i'))), now, series(consumers), series(2)),
    ])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--binary', default='target/release/placement')
    parser.add_argument('--providers', type=int, default=100000)
    parser.add_argument('--allocations', type=int, default=1000000)
    parser.add_argument('--mysql', action='store_true', help='a MariaDB source (and export target)')
    parser.add_argument('--venv', default=os.environ.get('VENV', '/tmp/placement-upstream-venv'))
    args = parser.parse_args()
    kind = 'mysql' if args.mysql else 'postgres'

    started = time.monotonic()
    source = fresh(kind, 'import_bench_source')
    db_sync(args.venv, source)
    sql = fill_sql(kind, args.providers, args.allocations)
    if kind == 'mysql':
        mysql(sql, 'import_bench_source')
    else:
        psql('import_bench_source', sql)
    print('source: %d providers, %d allocations on %s, made in %.1f s'
          % (args.providers, args.allocations, kind, time.monotonic() - started))

    target = fresh('postgres', 'import_bench_target')
    back = fresh(kind, 'import_bench_back')
    db_sync(args.venv, back)
    env = dict(os.environ, DATABASE_URL=target.replace('postgresql+psycopg2://', 'postgres://'),
               OS_API__AUTH_STRATEGY='noauth2', PLACEMENT_LOG='warn')
    failed = False
    for step in (['import', '--from', source], ['import', '--verify', '--from', source],
                 ['export', '--to', back], ['export', '--verify', '--to', back]):
        begun = time.monotonic()
        run = subprocess.run([args.binary] + step, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - begun
        last = (run.stdout.strip().splitlines() or [''])[-1]
        print('%-18s %6.1f s  exit %d  %s' % (' '.join(step[:2]) if step[1] == '--verify'
                                               else step[0], seconds, run.returncode, last))
        if run.returncode != 0:
            failed = True
            sys.stderr.write(run.stderr[-4000:])
            break
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
