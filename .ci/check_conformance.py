"""Compares a conformance report with the list of known failures.

Fails when a test fails that the list does not name (a regression), and
when a listed test now passes (so the list only ever shrinks). Prints the
counts in the plain 'N passed, N failed' form.
"""

import json
import sys


def main(report_path, known_path):
    with open(report_path) as report_file:
        report = json.load(report_file)
    with open(known_path) as known_file:
        known = {
            line.split("#", 1)[0].strip()
            for line in known_file
            if line.split("#", 1)[0].strip()
        }
    tests = report["tests"]
    failing = [t["id"] for t in tests if t["outcome"] in ("failed", "error")]
    passing = [t["id"] for t in tests if t["outcome"] in ("passed", "xfail")]
    failed = set(failing)
    # Two upstream tests share an id; a listed id must fail in every file.
    regressions = sorted(failed - known)
    present = {t["id"] for t in tests}
    fixed = sorted((known & present) - failed)
    print(f"conformance: {len(passing)} passed, {len(failing)} failed "
          f"(known {len(failed & known)}, new {len(regressions)})")
    for test_id in regressions:
        print(f"NEW FAILURE {test_id}")
    for test_id in fixed:
        print(f"NOW PASSING (remove from {known_path}) {test_id}")
    if not tests:
        print("the conformance report has no tests")
        return 1
    return 1 if regressions or fixed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
