#!/usr/bin/env python3
"""Soak test: a long mixed workload against several server processes on one
database, checking at the end what must hold after any amount of traffic.

Starts N `placement serve` processes (noauth2) on a fresh PostgreSQL
database and runs C client threads for D seconds. Each client loops over a
mix of what a cloud does: registering compute nodes (a root with inventory,
sometimes a child), updating inventories (with their generation, retrying
on 409), asking for allocation candidates, claiming for new consumers,
moving consumers to another provider (POST /allocations, as a migration),
deleting allocations and deleting empty providers.

Every minute it prints the requests, the p50/p99 per kind and each
process's RSS. At the end it checks:
  * no 5xx (and no transport errors) at any time;
  * OVERCOMMIT 0: no provider's usage exceeds (total - reserved) * ratio;
  * every provider's GET usages equals the allocations this client knows it
    left there (acknowledged writes only);
  * memory flat after warm-up: each process's RSS at the end within 15% (and
    16 MiB) of its RSS after the first fifth of the run;
  * p99 stable: the last minute's p99 of each kind within 3x of the second
    minute's.
The world is held at a steady size after warm-up (--max-providers,
--max-consumers), and where the cluster runs without autovacuum the script
runs VACUUM ANALYZE every minute in its place, so that late minutes are
comparable with early ones.
It exits 1 when any check fails.

    cargo build --release
    tools/soak.py --binary target/release/placement --duration 1800 \\
        --processes 3 --clients 50
"""
import argparse
import collections
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

VERSION = 'placement 1.39'
INVENTORY = {
    'VCPU': {'total': 64, 'allocation_ratio': 4.0},
    'MEMORY_MB': {'total': 262144, 'reserved': 512},
    'DISK_GB': {'total': 2048},
}
FLAVOR = {'VCPU': 2, 'MEMORY_MB': 4096, 'DISK_GB': 40}


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def rss_kib(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Stats:
    """Latencies and statuses per request kind, per minute."""

    def __init__(self):
        self.lock = threading.Lock()
        self.minutes = collections.defaultdict(lambda: collections.defaultdict(list))
        self.statuses = collections.Counter()
        self.errors = []
        self.started = time.time()

    def record(self, kind, status, seconds):
        minute = int((time.time() - self.started) // 60)
        with self.lock:
            self.minutes[minute][kind].append(seconds)
            self.statuses[(kind, status)] += 1
            if status >= 500 or status == 0:
                self.errors.append((kind, status))


def percentile(values, fraction):
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Client:
    def __init__(self, ports, stats):
        self.ports = ports
        self.stats = stats
        self.connections = {}

    def request(self, kind, method, path, body=None):
        port = random.choice(self.ports)
        headers = {'x-auth-token': 'admin', 'openstack-api-version': VERSION,
                   'accept': 'application/json'}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers['content-type'] = 'application/json'
        started = time.time()
        for attempt in (1, 2):
            connection = self.connections.get(port)
            if connection is None:
                connection = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
                self.connections[port] = connection
            try:
                connection.request(method, path, body=data, headers=headers)
                response = connection.getresponse()
                text = response.read()
                status = response.status
                break
            except (OSError, http.client.HTTPException):
                # A keep-alive connection the server closed: once more anew.
                connection.close()
                self.connections.pop(port, None)
                if attempt == 2:
                    self.stats.record(kind, 0, time.time() - started)
                    return 0, None
        self.stats.record(kind, status, time.time() - started)
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, None


class World:
    """What the clients know they wrote: providers and acknowledged claims."""

    def __init__(self, max_providers, max_consumers):
        self.lock = threading.Lock()
        self.providers = []          # uuids of providers with inventory
        self.consumers = {}          # consumer uuid -> provider uuid
        # The steady state the clients hold the world at after warm-up,
        # so that a p99 measured late is comparable with one measured early.
        self.max_providers = max_providers
        self.max_consumers = max_consumers


def register(client, world):
    with world.lock:
        if len(world.providers) >= world.max_providers:
            return
    root = str(uuid.uuid4())
    status, _ = client.request('register', 'POST', '/resource_providers',
                               {'name': 'cn-' + root, 'uuid': root})
    if status != 200:
        return
    status, _ = client.request('inventory', 'PUT', '/resource_providers/%s/inventories' % root,
                               {'resource_provider_generation': 0, 'inventories': INVENTORY})
    if random.random() < 0.3:
        child = str(uuid.uuid4())
        client.request('register', 'POST', '/resource_providers',
                       {'name': 'numa-' + child, 'uuid': child, 'parent_provider_uuid': root})
    if status == 200:
        with world.lock:
            world.providers.append(root)


def update_inventory(client, world):
    """Grows or shrinks VCPU a little, never below what is in use: upstream
    (and this server) accept an inventory below its usage and only log it,
    which would make the OVERCOMMIT check count what no claim did. The
    usages and the inventory are read at one generation and written back
    with it, so a claim in between makes the write a 409 and a new try."""
    with world.lock:
        if not world.providers:
            return
        provider = random.choice(world.providers)
    for _ in range(5):
        status, usages = client.request('inventory', 'GET',
                                        '/resource_providers/%s/usages' % provider)
        if status != 200:
            return
        status, body = client.request('inventory', 'GET',
                                      '/resource_providers/%s/inventories' % provider)
        if status != 200:
            return
        if body['resource_provider_generation'] != usages['resource_provider_generation']:
            continue
        inventories = body['inventories']
        vcpu = inventories.get('VCPU')
        if vcpu is None:
            return
        used = usages['usages'].get('VCPU', 0)
        floor = vcpu['reserved'] + -(-used // int(vcpu['allocation_ratio']))
        vcpu['total'] = max(16, floor, min(128, vcpu['total'] + random.choice((-8, 8))))
        vcpu['max_unit'] = vcpu['total']
        status, _ = client.request('inventory', 'PUT',
                                   '/resource_providers/%s/inventories' % provider,
                                   {'resource_provider_generation':
                                    body['resource_provider_generation'],
                                    'inventories': inventories})
        if status != 409:
            return


def claim(client, world):
    resources = ','.join('%s:%d' % item for item in FLAVOR.items())
    status, body = client.request('candidates', 'GET',
                                  '/allocation_candidates?resources=%s&limit=10' % resources)
    if status != 200 or not body['allocation_requests']:
        return
    choice = random.choice(body['allocation_requests'])
    consumer = str(uuid.uuid4())
    status, _ = client.request('claim', 'PUT', '/allocations/%s' % consumer, {
        'allocations': choice['allocations'], 'project_id': 'soak', 'user_id': 'soak',
        'consumer_generation': None, 'consumer_type': 'INSTANCE'})
    if status == 204:
        provider = next(iter(choice['allocations']))
        with world.lock:
            world.consumers[consumer] = provider


def move(client, world):
    with world.lock:
        if not world.consumers or len(world.providers) < 2:
            return
        consumer = random.choice(list(world.consumers))
        source = world.consumers.pop(consumer)
        target = random.choice(world.providers)
    status, body = client.request('move', 'GET', '/allocations/%s' % consumer)
    if status != 200 or source not in body.get('allocations', {}):
        with world.lock:
            world.consumers[consumer] = source
        return
    migration = str(uuid.uuid4())
    status, _ = client.request('move', 'POST', '/allocations', {
        consumer: {'allocations': {target: {'resources': FLAVOR}}, 'project_id': 'soak',
                   'user_id': 'soak', 'consumer_generation': body['consumer_generation'],
                   'consumer_type': 'INSTANCE'},
        migration: {'allocations': {}, 'project_id': 'soak', 'user_id': 'soak',
                    'consumer_generation': None, 'consumer_type': 'MIGRATION'}})
    with world.lock:
        world.consumers[consumer] = target if status == 204 else source


def delete(client, world):
    with world.lock:
        if not world.consumers:
            return
        consumer = random.choice(list(world.consumers))
        provider = world.consumers.pop(consumer)
    status, _ = client.request('delete', 'DELETE', '/allocations/%s' % consumer)
    if status not in (204, 404):
        with world.lock:
            world.consumers[consumer] = provider


def delete_provider(client, world):
    with world.lock:
        used = set(world.consumers.values())
        idle = [p for p in world.providers if p not in used]
        if len(world.providers) < 20 or not idle:
            return
        provider = random.choice(idle)
        world.providers.remove(provider)
    # Its child (if any) first; an in-use provider answers 409 and stays.
    status, body = client.request('delete', 'GET',
                                  '/resource_providers?in_tree=%s' % provider)
    if status == 200:
        for child in body['resource_providers']:
            if child['uuid'] != provider:
                client.request('delete', 'DELETE', '/resource_providers/%s' % child['uuid'])
    status, _ = client.request('delete', 'DELETE', '/resource_providers/%s' % provider)
    if status != 204:
        with world.lock:
            world.providers.append(provider)


MIX = [(register, 4), (update_inventory, 6), (claim, 50), (move, 10), (delete, 25),
       (delete_provider, 2)]


def vacuum_every_minute(pg_url, database, deadline):
    while time.time() < deadline - 60:
        time.sleep(60)
        subprocess.run(['psql', '%s/%s' % (pg_url, database), '-qc', 'VACUUM ANALYZE'],
                       check=False)


def run_client(ports, stats, world, deadline):
    client = Client(ports, stats)
    actions = [action for action, weight in MIX for _ in range(weight)]
    while time.time() < deadline:
        action = random.choice(actions)
        if action is claim and len(world.consumers) >= world.max_consumers:
            action = delete
        action(client, world)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--binary', default='target/release/placement')
    ap.add_argument('--duration', type=float, default=1800)
    ap.add_argument('--processes', type=int, default=3)
    ap.add_argument('--clients', type=int, default=50)
    ap.add_argument('--providers', type=int, default=200, help='registered before the clients start')
    ap.add_argument('--max-providers', type=int, default=1000,
                    help='registrations stop at this many providers (deletions go on)')
    ap.add_argument('--max-consumers', type=int, default=10000,
                    help='claims turn into deletes while this many consumers hold allocations')
    ap.add_argument('--pg-url', default='postgresql://root@127.0.0.1:5432')
    ap.add_argument('--report', help='write the per-minute numbers as JSON here')
    args = ap.parse_args()

    database = 'soak_%d' % os.getpid()
    subprocess.run(['psql', args.pg_url + '/postgres', '-qc', 'CREATE DATABASE %s' % database],
                   check=True)
    servers = []
    ports = []
    try:
        for index in range(args.processes):
            port = free_port()
            env = dict(os.environ, OS_API__AUTH_STRATEGY='noauth2', PORT=str(port),
                       OS_PLACEMENT_DATABASE__CONNECTION='%s/%s' % (args.pg_url, database),
                       OS_SERVER__LOG_FILTER='error', OS_PLACEMENT_DATABASE__MAX_POOL_SIZE='8')
            servers.append(subprocess.Popen([args.binary, 'serve'], env=env,
                                            stdout=subprocess.DEVNULL))
            ports.append(port)
            # One at a time: the first applies the migrations.
            deadline = time.time() + 60
            while time.time() < deadline:
                try:
                    http.client.HTTPConnection('127.0.0.1', port, timeout=2).request('GET', '/')
                    break
                except OSError:
                    time.sleep(0.2)
        stats = Stats()
        world = World(args.max_providers, args.max_consumers)
        seeding = Client(ports, stats)
        for _ in range(args.providers):
            register(seeding, world)
        stats = Stats()
        deadline = time.time() + args.duration
        threads = [threading.Thread(target=run_client, args=(ports, stats, world, deadline),
                                    daemon=True) for _ in range(args.clients)]
        for thread in threads:
            thread.start()
        autovacuum = subprocess.run(['psql', '%s/%s' % (args.pg_url, database), '-Atc',
                                     'SHOW autovacuum'], capture_output=True, text=True)
        if autovacuum.stdout.strip() == 'off':
            # A long run on a cluster with autovacuum off measures table
            # bloat, not the server (allocations and consumers churn): stand
            # in for autovacuum with a VACUUM ANALYZE a minute.
            print('autovacuum is off on this cluster: VACUUM ANALYZE every 60 s instead',
                  flush=True)
            threading.Thread(target=vacuum_every_minute, args=(args.pg_url, database, deadline),
                             daemon=True).start()
        memory = []   # (minute, [rss KiB per process])
        minute = 0
        while any(thread.is_alive() for thread in threads):
            time.sleep(1)
            now_minute = int((time.time() - stats.started) // 60)
            if now_minute > minute:
                minute = now_minute
                memory.append((minute, [rss_kib(server.pid) for server in servers]))
                with stats.lock:
                    kinds = stats.minutes.get(minute - 1, {})
                    line = '  '.join('%s n=%d p50=%.1f p99=%.1f' % (
                        kind, len(values), 1000 * percentile(values, 0.5),
                        1000 * percentile(values, 0.99)) for kind, values in sorted(kinds.items()))
                print('[min %d] %s  rss MiB %s' % (minute, line,
                      [round((r or 0) / 1024) for r in memory[-1][1]]), flush=True)
        for thread in threads:
            thread.join()
        failures = verify(Client(ports, stats), world, stats, memory)
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        subprocess.run(['psql', args.pg_url + '/postgres', '-qc',
                        'DROP DATABASE IF EXISTS %s WITH (FORCE)' % database], check=False)
    totals = collections.Counter()
    for (kind, status), count in stats.statuses.items():
        totals[status] += count
    print('requests by status: %s' % dict(sorted(totals.items())))
    print('4xx by kind: %s' % dict(sorted(('%s %s' % key, n) for key, n in stats.statuses.items()
                                          if 400 <= key[1] < 500)))
    print('acknowledged consumers at the end: %d, providers: %d' % (
        len(world.consumers), len(world.providers)))
    if args.report:
        with open(args.report, 'w') as f:
            json.dump({'statuses': {'%s %s' % key: n for key, n in stats.statuses.items()},
                       'memory_kib': memory,
                       'minutes': {m: {k: {'n': len(v), 'p50_ms': 1000 * percentile(v, 0.5),
                                           'p99_ms': 1000 * percentile(v, 0.99)}
                                       for k, v in kinds.items()}
                                   for m, kinds in stats.minutes.items()},
                       'failures': failures}, f, indent=1)
    for failure in failures:
        print('FAILED: ' + failure)
    print('soak: %s' % ('passed' if not failures else '%d checks failed' % len(failures)))
    sys.exit(1 if failures else 0)


def verify(client, world, stats, memory):
    failures = []
    if stats.errors:
        failures.append('%d 5xx or transport errors, e.g. %s' % (len(stats.errors),
                                                               stats.errors[:5]))
    expected = collections.Counter()
    for consumer, provider in world.consumers.items():
        expected[provider] += 1
    overcommit = 0
    mismatched = 0
    for provider in world.providers:
        status, usages = client.request('verify', 'GET', '/resource_providers/%s/usages' % provider)
        status_i, inventories = client.request('verify', 'GET',
                                               '/resource_providers/%s/inventories' % provider)
        if status != 200 or status_i != 200:
            failures.append('cannot read provider %s (%s, %s)' % (provider, status, status_i))
            continue
        for rc, used in usages['usages'].items():
            inventory = inventories['inventories'].get(rc)
            if inventory and used > (inventory['total'] - inventory['reserved']) * \
                    inventory['allocation_ratio']:
                overcommit += 1
            if used != expected[provider] * FLAVOR.get(rc, 0):
                mismatched += 1
    if overcommit:
        failures.append('OVERCOMMIT %d' % overcommit)
    if mismatched:
        failures.append('%d provider usages differ from the acknowledged claims' % mismatched)
    if len(memory) >= 5:
        warm = memory[len(memory) // 5][1]
        end = memory[-1][1]
        for index, (before, after) in enumerate(zip(warm, end)):
            if before and after and after > max(before * 1.15, before + 16 * 1024):
                failures.append('process %d RSS grew from %d to %d KiB after warm-up'
                                % (index, before, after))
    minutes = sorted(stats.minutes)
    if len(minutes) >= 4:
        second, last = stats.minutes[minutes[1]], stats.minutes[minutes[-2]]
        for kind in second:
            early, late = percentile(second[kind], 0.99), percentile(last.get(kind, []), 0.99)
            if early and late > 3 * early and late > 0.05:
                failures.append('%s p99 went from %.1f to %.1f ms' % (kind, 1000 * early,
                                                                      1000 * late))
    print('OVERCOMMIT %d; usage mismatches %d' % (overcommit, mismatched))
    return failures


if __name__ == '__main__':
    main()
