#!/usr/bin/env python3
"""This server behind a real Keystone against the same binary with noauth2,
in one run of the shared benchmark (../shared/bench/run.py).

Starts Keystone with ../shared/keystone/start.sh, writes a placement.conf for
`auth_strategy = keystone`, takes a real admin token, and runs the bench with
that token in every request plus `X-Roles: admin`: the noauth2 server takes
its roles from that header, the Keystone server ignores it and validates the
token (once; then from its cache). Arguments after `--` go to run.py, e.g.

    tools/bench-keystone.py --binary target/release/placement -- \\
        --providers 1000 --scenarios candidates-flat,claims --rounds 3
"""
import argparse
import os
import runpy
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), 'shared')


def keystone(port, work_dir):
    env = dict(os.environ, KS_PORT=str(port), KS_DIR=os.path.join(work_dir, 'keystone'))
    out = subprocess.run(['bash', os.path.join(SHARED, 'keystone', 'start.sh')], env=env,
                         check=True, capture_output=True, text=True).stdout
    values = dict(line.split('=', 1) for line in out.splitlines() if '=' in line)
    with open(values['KS_ADMIN_TOKEN_FILE']) as f:
        values['ADMIN_TOKEN'] = f.read().strip()
    return values, env


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--binary', default=os.path.join(REPO, 'target', 'release', 'placement'))
    ap.add_argument('--keystone-port', type=int, default=35400)
    ap.add_argument('--work-dir', default=os.path.join(REPO, 'target', 'bench-keystone'))
    ap.add_argument('bench_args', nargs=argparse.REMAINDER)
    args = ap.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    values, ks_env = keystone(args.keystone_port, args.work_dir)
    try:
        conf = os.path.join(args.work_dir, 'placement.conf')
        with open(conf, 'w') as f:
            f.write('[keystone_authtoken]\n'
                    'www_authenticate_uri = %(KS_AUTH_URL)s\n'
                    'auth_url = %(KS_AUTH_URL)s\n'
                    'auth_type = password\n'
                    'project_domain_name = Default\n'
                    'user_domain_name = Default\n'
                    'project_name = %(KS_SERVICE_PROJECT)s\n'
                    'username = %(KS_SERVICE_USER)s\n'
                    'password = %(KS_SERVICE_PASSWORD)s\n'
                    'interface = public\n'
                    'service_type = placement\n' % values)
        binary = os.path.abspath(args.binary)
        # The bench sets OS_API__AUTH_STRATEGY=noauth2 for every server; the
        # command's own assignment comes after it.
        keystone_cmd = 'env OS_API__AUTH_STRATEGY=keystone %s --config-file %s serve' % (
            binary, conf)
        noauth_cmd = '%s serve' % binary
        bench_args = [a for a in args.bench_args if a != '--']
        sys.argv = ['run.py', '--server-cmd', keystone_cmd, '--server-name', 'keystone',
                    '--baseline-cmd', noauth_cmd, '--baseline-name', 'noauth2'] + bench_args
        sys.path.insert(0, os.path.join(SHARED, 'bench'))
        bench = runpy.run_path(os.path.join(SHARED, 'bench', 'run.py'), run_name='bench')
        bench['HEADERS']['x-auth-token'] = values['ADMIN_TOKEN']
        bench['HEADERS']['x-roles'] = 'admin'
        bench['main']()
    finally:
        subprocess.run(['bash', os.path.join(SHARED, 'keystone', 'start.sh'), 'stop'],
                       env=ks_env, check=False)


if __name__ == '__main__':
    main()
