#!/usr/bin/env python3
"""Differential test: the same seeded, stateful request sequence sent to
upstream OpenStack Placement 16.0.0 and to this server, each on a fresh
PostgreSQL database, every answer compared. See README.md.

Exit status: 0 when every divergence is explained by the allowlist (or is
one of upstream's known PostgreSQL 500s), 1 when any is not, 2 when a
server could not be started.
"""
import argparse
import json
import os
import re
import shutil
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import compare  # noqa: E402
import generator  # noqa: E402
import harness  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
UUID_RE = compare.UUID_RE


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--seeds', type=int, default=20, help='how many seeds (default 20)')
    p.add_argument('--seed-base', type=int, default=1, help='first seed (default 1)')
    p.add_argument('--seed', type=int, action='append',
                   help='run only this seed (repeatable); overrides --seeds')
    p.add_argument('--steps', type=int, default=300, help='requests per seed (default 300)')
    p.add_argument('--binary', default=os.path.join(ROOT, 'target', 'debug', 'placement'),
                   help='this server (copied to a private path before the run)')
    p.add_argument('--no-copy', action='store_true', help='run --binary in place')
    p.add_argument('--venv', default=os.environ.get('VENV', '/tmp/placement-upstream-venv'))
    p.add_argument('--upstream-cmd',
                   default=os.path.join(ROOT, '..', 'shared', 'bench', 'upstream', 'server.sh'))
    p.add_argument('--rbac', default='secure', choices=['secure', 'legacy'],
                   help="this server's RBAC; upstream's server.sh leaves oslo.policy's "
                        "enforce_new_defaults at its default, True, i.e. secure")
    p.add_argument('--pg-host', default=os.environ.get('PGHOST', '127.0.0.1'))
    p.add_argument('--pg-port', type=int, default=int(os.environ.get('PGPORT', '5432')))
    p.add_argument('--pg-user', default=os.environ.get('PGUSER', 'root'))
    p.add_argument('--allowlist', default=os.path.join(HERE, 'allowlist.json'))
    p.add_argument('--work-dir', default=os.path.join(ROOT, 'target', 'differential'),
                   help='logs, traces and the private copy of the binary')
    p.add_argument('--keep-db', action='store_true')
    p.add_argument('--keep-going', action='store_true',
                   help='carry on after a write diverged (later answers may be noise)')
    p.add_argument('--trace', action='store_true',
                   help='write every request and both answers to WORK_DIR/seed-N.trace.jsonl')
    p.add_argument('--report', help='write every divergence as JSON to this file')
    p.add_argument('--show-explained', action='store_true',
                   help='also print divergences the allowlist explains')
    p.add_argument('-v', '--verbose', action='store_true', help='print every request')
    return p.parse_args()


def state_may_differ(req, up, rs):
    """After this divergence, may the two databases no longer agree?"""
    if not req.write:
        return False
    return (200 <= up.status < 300) != (200 <= rs.status < 300)


class SeedRun:
    def __init__(self, args, seed, binary, pg, allow):
        self.args, self.seed, self.binary, self.pg, self.allow = args, seed, binary, pg, allow
        self.up_db = 'diff_%d_up' % seed
        self.rs_db = 'diff_%d_rs' % seed
        self.rs2up = {}        # uuids this server generated -> upstream's
        self.up2rs = {}
        self.unexplained = []
        self.explained = []
        self.known_500 = []
        self.steps = 0
        self.stopped = None
        self.kinds = {}

    def servers(self):
        a = self.args
        logs = os.path.join(a.work_dir, 'logs')
        os.makedirs(logs, exist_ok=True)
        up_env = dict(os.environ, PORT=str(harness.free_port()),
                      DATABASE_URL=self.pg.url(self.up_db), VENV=a.venv)
        up = harness.Server('upstream', ['bash', a.upstream_cmd], up_env, int(up_env['PORT']),
                            os.path.join(logs, 'seed-%d-upstream.log' % self.seed))
        rs_env = {k: v for k, v in os.environ.items()
                  if not (k.startswith('OS_') or k in ('RBAC', 'POLICY_FILE'))}
        rs_env.update(PORT=str(harness.free_port()), DATABASE_URL=self.pg.url(self.rs_db),
                      OS_API__AUTH_STRATEGY='noauth2', RBAC=a.rbac)
        rs = harness.Server('placement-rs', [self.binary, 'serve'], rs_env,
                            int(rs_env['PORT']),
                            os.path.join(logs, 'seed-%d-placement-rs.log' % self.seed))
        return up, rs

    def to_ours(self, req):
        """The request as sent to this server: upstream's generated uuids mapped."""
        if not self.up2rs:
            return req.path, req.body
        sub = lambda m: self.up2rs.get(m.group(0), m.group(0))  # noqa: E731
        path = UUID_RE.sub(sub, req.path)
        body = req.body
        if body is not None:
            body = UUID_RE.sub(sub, body.decode('utf-8', 'replace')).encode() \
                if b'-' in body else body
        return path, body

    def learn(self, req, up, rs):
        if not req.learn_uuid:
            return
        def uid(resp):
            m = UUID_RE.search(resp.header('location') or '')
            return m.group(0) if m else None
        u, r = uid(up), uid(rs)
        if u and r and u != r:
            self.rs2up[r] = u
            self.up2rs[u] = r

    def send_both(self, up_srv, rs_srv, req):
        box = {}

        def go():
            try:
                box['up'] = up_srv.request(req.method, req.path, req.headers, req.body)
            except Exception as exc:  # noqa: BLE001
                box['up_err'] = exc
        t = threading.Thread(target=go)
        t.start()
        path, body = self.to_ours(req)
        rs = rs_srv.request(req.method, path, req.headers, body)
        t.join()
        if 'up_err' in box:
            raise box['up_err']
        return box['up'], rs

    def report(self, req, up, rs, divs, entry):
        head = 'EXPLAINED (%s)' % entry['id'] if entry else 'DIVERGENCE'
        lines = ['%s seed=%d step=%d kind=%s' % (head, self.seed, self.steps, req.kind),
                 '  request: ' + req.describe().replace('\n', '\n  ')]
        for d in divs:
            lines.append('  %s' % d)
        lines.append('  upstream: ' + up.summary())
        lines.append('  ours:     ' + rs.summary())
        print('\n'.join(lines), flush=True)

    def record(self, req, up, rs, divs, entry):
        item = {'seed': self.seed, 'step': self.steps, 'kind': req.kind,
                'method': req.method, 'path': req.path, 'headers': req.headers,
                'body': req.body.decode('utf-8', 'replace') if req.body is not None else None,
                'divergences': [{'aspect': d.aspect, 'upstream': d.upstream, 'ours': d.ours,
                                 'note': d.note} for d in divs],
                'upstream': up.summary(4000), 'ours': rs.summary(4000),
                'allowlist': entry['id'] if entry else None}
        (self.explained if entry else self.unexplained).append(item)

    def run(self):
        a = self.args
        self.pg.create(self.up_db)
        self.pg.create(self.rs_db)
        up_srv, rs_srv = self.servers()
        trace = open(os.path.join(a.work_dir, 'seed-%d.trace.jsonl' % self.seed), 'w') \
            if a.trace else None
        try:
            up_srv.start()
            rs_srv.start()
            gen = generator.Generator(self.seed)
            actions = gen.actions()
            while self.steps < a.steps and not self.stopped:
                action = next(actions)()
                resp = None
                try:
                    while self.steps < a.steps and not self.stopped:
                        req = action.send(resp)
                        self.steps += 1
                        self.kinds[req.kind] = self.kinds.get(req.kind, 0) + 1
                        up, rs = self.send_both(up_srv, rs_srv, req)
                        self.learn(req, up, rs)
                        self.check(req, up, rs, up_srv, rs_srv)
                        if trace:
                            trace.write(json.dumps({
                                'step': self.steps, 'kind': req.kind, 'method': req.method,
                                'path': req.path, 'headers': req.headers,
                                'body': req.body.decode('utf-8', 'replace')
                                if req.body is not None else None,
                                'upstream': up.summary(100000),
                                'ours': rs.summary(100000)}) + '\n')
                        if a.verbose:
                            print('seed=%d step=%d %s %s -> %d / %d' % (
                                self.seed, self.steps, req.method, req.path,
                                up.status, rs.status), flush=True)
                        resp = up
                except StopIteration:
                    pass
                finally:
                    action.close()
        finally:
            if trace:
                trace.close()
            up_srv.stop()
            rs_srv.stop()
            if not a.keep_db:
                for db in (self.up_db, self.rs_db):
                    try:
                        self.pg.drop(db)
                    except Exception as exc:  # noqa: BLE001
                        print('could not drop %s: %s' % (db, exc), file=sys.stderr)

    def limited_choice(self, req, up, rs, up_srv, rs_srv):
        """With `limit`, which candidates are kept is the order they are
        generated in, upstream's being database row order. When the two
        limited answers differ, ask both again without `limit`: if those
        agree, and ours kept as many as upstream, each of them one of
        upstream's and each summary as upstream's full answer has it, the
        difference is only the choice (aspect `limit-choice`)."""
        path, _, query = req.path.partition('?')
        if path != '/allocation_candidates' or not re.search(r'(^|&)limit=', query):
            return None
        if up.status != 200 or not isinstance(up.json, dict) or not isinstance(rs.json, dict):
            return None
        unlimited = '&'.join(p for p in query.split('&') if not p.startswith('limit='))
        full_req = generator.Request('GET', path + ('?' + unlimited if unlimited else ''),
                                     req.headers, None, req.minor, False, kind='unlimited')
        up_full, rs_full = self.send_both(up_srv, rs_srv, full_req)
        if compare.compare(full_req, up_full, rs_full, self.rs2up):
            return None   # the full answers differ: the real divergence stays
        ours = json.loads(compare.mapped_text(rs, self.rs2up))
        full = up_full.json
        canon = compare.canon_allocation_request
        everything = {canon(a) for a in full['allocation_requests']}
        kept = [canon(a) for a in ours['allocation_requests']]
        summaries = compare.canon_summaries(full['provider_summaries'])
        own = compare.canon_summaries(ours['provider_summaries'])
        if (len(kept) != len(up.json['allocation_requests']) or len(set(kept)) != len(kept)
                or not all(k in everything for k in kept)
                or any(summaries.get(u) != v for u, v in own.items())):
            return None
        return [compare.Divergence(
            'limit-choice', len(up.json['allocation_requests']), len(kept),
            'both keep %d of the same %d candidates, not the same ones'
            % (len(kept), len(everything)))]

    def check(self, req, up, rs, up_srv, rs_srv):
        known = compare.known_upstream_500(req, up)
        if known:
            self.known_500.append((self.steps, req.method, req.path))
            if self.args.verbose:
                print('SKIPPED seed=%d step=%d %s %s: known upstream 500: %s'
                      % (self.seed, self.steps, req.method, req.path, known))
            return
        divs = compare.compare(req, up, rs, self.rs2up)
        if divs and all(d.aspect == 'body' for d in divs):
            divs = self.limited_choice(req, up, rs, up_srv, rs_srv) or divs
        if up.status >= 500 or rs.status >= 500:
            if not any(d.aspect == 'status' for d in divs):
                divs.insert(0, compare.Divergence('5xx', up.status, rs.status,
                                                  'a 5xx on both sides'))
        if not divs:
            return
        entries = [self.allow.explain(req, up, rs, d) for d in divs]
        unexplained = [d for d, e in zip(divs, entries) if e is None]
        entry = next((e for e in entries if e), None) if not unexplained else None
        self.record(req, up, rs, divs, entry)
        if unexplained or self.args.show_explained:
            self.report(req, up, rs, divs, entry)
        if not unexplained and entry and entry.get('state_safe'):
            return
        if state_may_differ(req, up, rs) and not unexplained and req.undo:
            side = up_srv if 200 <= up.status < 300 else rs_srv
            side.request(req.undo[0], req.undo[1], {'X-Auth-Token': 'admin'}, None)
            return
        if state_may_differ(req, up, rs) and not self.args.keep_going:
            self.stopped = 'step %d (%s %s) left the two databases different' % (
                self.steps, req.method, req.path)
            print('  seed %d stopped: %s' % (self.seed, self.stopped), flush=True)


def main():
    args = parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    if not os.path.exists(os.path.join(args.venv, 'bin', 'uwsgi')):
        print('upstream venv missing at %s (make it with ../shared/bench/upstream/setup.sh)'
              % args.venv, file=sys.stderr)
        return 2
    binary = args.binary
    if not args.no_copy:
        binary = os.path.join(args.work_dir, 'placement')
        shutil.copy2(args.binary, binary + '.tmp')
        os.replace(binary + '.tmp', binary)
    allow = compare.Allowlist(args.allowlist)
    pg = harness.Postgres(args.pg_host, args.pg_port, args.pg_user)
    seeds = args.seed or list(range(args.seed_base, args.seed_base + args.seeds))
    started = time.time()
    runs = []
    failed_start = []
    for seed in seeds:
        t0 = time.time()
        run = SeedRun(args, seed, binary, pg, allow)
        try:
            run.run()
        except RuntimeError as exc:
            print('seed %d: %s' % (seed, exc), flush=True)
            failed_start.append(seed)
            continue
        runs.append(run)
        print('seed %d: %d steps, %d unexplained, %d explained, %d known upstream 500s '
              'skipped%s (%.0fs)' % (seed, run.steps, len(run.unexplained), len(run.explained),
                                     len(run.known_500),
                                     ', stopped at ' + run.stopped if run.stopped else '',
                                     time.time() - t0), flush=True)
    elapsed = time.time() - started
    total_steps = sum(r.steps for r in runs)
    unexplained = sum(len(r.unexplained) for r in runs)
    explained = sum(len(r.explained) for r in runs)
    known = sum(len(r.known_500) for r in runs)
    kinds = {}
    for r in runs:
        for k, n in r.kinds.items():
            kinds[k] = kinds.get(k, 0) + n
    print('\nrequest kinds: ' + ', '.join('%s %d' % kv for kv in sorted(kinds.items())))
    if allow.used:
        print('allowlist entries used: ' + ', '.join('%s x%d' % kv
                                                    for kv in sorted(allow.used.items())))
    print('%d seeds x %d steps (%d requests each side), %d unexplained divergences, '
          '%d explained, %d known upstream 500s skipped, %d seeds stopped early, %.0fs'
          % (len(runs), args.steps, total_steps, unexplained, explained, known,
             sum(1 for r in runs if r.stopped), elapsed))
    if args.report:
        with open(args.report, 'w') as f:
            json.dump({'seeds': seeds, 'steps': args.steps, 'elapsed_s': elapsed,
                       'requests': total_steps, 'kinds': kinds,
                       'unexplained': [d for r in runs for d in r.unexplained],
                       'explained': [d for r in runs for d in r.explained],
                       'known_upstream_500': [
                           {'seed': r.seed, 'step': s, 'method': m, 'path': p}
                           for r in runs for (s, m, p) in r.known_500],
                       'stopped': {r.seed: r.stopped for r in runs if r.stopped}},
                      f, indent=1, default=str)
    if failed_start:
        print('servers did not start for seeds %s' % failed_start)
        return 2
    return 1 if unexplained else 0


if __name__ == '__main__':
    sys.exit(main())
