#!/usr/bin/env python3
"""Times a ranked `POST /claims` dry run on a large world.

Makes a fresh database of this server (`placement migrate`), fills it with
SQL: PROVIDERS compute nodes with VCPU, MEMORY_MB and DISK_GB inventory of
three sizes, one aggregate each, and one instance on each using a varying
share of it (so that every weigher sees a spread of free capacity), starts
the server on it, and sends REQUESTS sequential dry runs asking for the
best 3 candidates by Nova's RAM and CPU weighers. Prints p50, p90 and p99
in milliseconds, and exits 1 if an answer is not 3 candidates best first.

    cargo build --release
    tools/rank_bench.py --binary target/release/placement --providers 100000
"""
import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import time

ADMIN = 'postgres://root@127.0.0.1:5432/postgres'


def psql(database, sql):
    subprocess.run(['psql', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-U', 'root',
                    '-d', database, '-c', sql], check=True, stdout=subprocess.DEVNULL)


def fill(providers):
    series = '(SELECT i FROM generate_series(1, %d) i)' % providers
    cls = "(SELECT id FROM resource_classes WHERE name = '%s')"
    return ''.join([
        "INSERT INTO resource_providers (id, uuid, name, generation, root_provider_id, created_at) "
        "SELECT i, md5('rp' || i)::uuid, 'cn' || i, 1, i, now() FROM %s s;" % series,
        "SELECT setval('resource_providers_id_seq', %d);" % providers,
        "INSERT INTO inventories (resource_provider_id, resource_class_id, total, reserved, "
        "min_unit, max_unit, step_size, allocation_ratio, created_at) "
        "SELECT i, %s, 16 * (1 + i %% 3), 0, 1, 64, 1, 4.0, now() FROM %s s;" % (cls % 'VCPU', series),
        "INSERT INTO inventories (resource_provider_id, resource_class_id, total, reserved, "
        "min_unit, max_unit, step_size, allocation_ratio, created_at) "
        "SELECT i, %s, 65536 * (1 + i %% 3), 512, 1, 262144, 1, 1.0, now() FROM %s s;"
        % (cls % 'MEMORY_MB', series),
        "INSERT INTO inventories (resource_provider_id, resource_class_id, total, reserved, "
        "min_unit, max_unit, step_size, allocation_ratio, created_at) "
        "SELECT i, %s, 2000, 0, 1, 2000, 1, 1.0, now() FROM %s s;" % (cls % 'DISK_GB', series),
        "INSERT INTO placement_aggregates (id, uuid, created_at) "
        "SELECT i, md5('agg' || i)::uuid, now() FROM generate_series(1, 100) i;",
        "INSERT INTO resource_provider_aggregates (resource_provider_id, aggregate_id, created_at) "
        "SELECT i, 1 + i %% 100, now() FROM %s s;" % series,
        "INSERT INTO projects (id, external_id, created_at) VALUES (1, 'bench', now());",
        "INSERT INTO users (id, external_id, created_at) VALUES (1, 'bench', now());",
        "INSERT INTO consumers (id, uuid, project_id, user_id, generation, created_at) "
        "SELECT i, md5('c' || i)::uuid, 1, 1, 1, now() FROM %s s;" % series,
        "INSERT INTO allocations (resource_provider_id, consumer_id, resource_class_id, used, "
        "created_at) SELECT i, md5('c' || i)::uuid, %s, 1 + i %% 37, now() FROM %s s;"
        % (cls % 'VCPU', series),
        "INSERT INTO allocations (resource_provider_id, consumer_id, resource_class_id, used, "
        "created_at) SELECT i, md5('c' || i)::uuid, %s, 1024 * (i %% 53), now() FROM %s s;"
        % (cls % 'MEMORY_MB', series),
    ])


def request(connection, body):
    connection.request('POST', '/claims', body=json.dumps(body), headers={
        'x-auth-token': 'admin', 'openstack-api-version': 'placement latest',
        'content-type': 'application/json'})
    response = connection.getresponse()
    return response.status, response.read()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--binary', default='target/release/placement')
    parser.add_argument('--providers', type=int, default=100000)
    parser.add_argument('--requests', type=int, default=200)
    parser.add_argument('--port', type=int, default=21900)
    parser.add_argument('--database', default='rank_bench')
    args = parser.parse_args()

    psql('postgres', 'DROP DATABASE IF EXISTS %s' % args.database)
    psql('postgres', 'CREATE DATABASE %s' % args.database)
    url = ADMIN.rsplit('/', 1)[0] + '/' + args.database
    env = dict(os.environ, DATABASE_URL=url, PORT=str(args.port),
               OS_API__AUTH_STRATEGY='noauth2')
    subprocess.run([args.binary, 'migrate'], check=True, env=env, stdout=subprocess.DEVNULL)
    started = time.monotonic()
    psql(args.database, fill(args.providers))
    psql(args.database, 'ANALYZE')
    print('filled %d providers in %.1f s' % (args.providers, time.monotonic() - started))

    server = subprocess.Popen([args.binary, 'serve'], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        connection = None
        for _ in range(300):
            try:
                connection = http.client.HTTPConnection('127.0.0.1', args.port, timeout=60)
                connection.request('GET', '/')
                response = connection.getresponse()
                response.read()
                if response.status == 200:
                    break
            except OSError:
                connection = None
                time.sleep(0.2)
        if connection is None:
            sys.exit('server did not start')
        body = {
            'query': {'resources': 'VCPU:1,MEMORY_MB:2048,DISK_GB:20', 'limit': '3'},
            'weighers': {'MEMORY_MB': 1.0, 'VCPU': 1.0},
            'dry_run': True,
        }
        for _ in range(3):  # the first loads the view
            request(connection, body)
        times = []
        for _ in range(args.requests):
            began = time.perf_counter()
            status, payload = request(connection, body)
            times.append((time.perf_counter() - began) * 1000)
            answer = json.loads(payload)
            weights = [candidate['weight'] for candidate in answer.get('candidates', [])]
            if status != 200 or len(weights) != 3 or weights != sorted(weights, reverse=True):
                sys.exit('unexpected answer: %d %s' % (status, payload[:300]))
        times.sort()
        pick = lambda q: times[min(len(times) - 1, int(q * len(times)))]
        print('ranked dry run, best 3 of %d providers: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms '
              '(%d requests)' % (args.providers, pick(0.5), pick(0.9), pick(0.99), len(times)))
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=30)
        psql('postgres', 'DROP DATABASE IF EXISTS %s' % args.database)


if __name__ == '__main__':
    main()
