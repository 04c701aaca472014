#!/usr/bin/env bash
# The differential test against upstream Placement 16.0.0, for CI: skipped
# (exit 0) when upstream's virtualenv is not installed. Builds this server
# (cargo build), then runs tools/differential/diff.py with the arguments
# given (default: 20 seeds x 300 steps); exits with diff.py's status.
#   VENV   upstream's virtualenv (default /tmp/placement-upstream-venv; make
#          it with ../shared/bench/upstream/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-/tmp/placement-upstream-venv}
if [ ! -x "$VENV/bin/uwsgi" ]; then
    echo "skipped: upstream venv missing at $VENV (install it with ../shared/bench/upstream/setup.sh)"
    exit 0
fi
if [ ! -x ../shared/bench/upstream/server.sh ] && [ ! -f ../shared/bench/upstream/server.sh ]; then
    echo "skipped: upstream's server.sh missing at ../shared/bench/upstream/server.sh"
    exit 0
fi
cargo build --quiet
exec python3 tools/differential/diff.py --venv "$VENV" \
    --report target/differential/report.json "$@"
