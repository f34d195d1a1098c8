#!/usr/bin/env python3
"""Compares the results of two report.json files case by case, as docs/PERFORMANCE.md uses it
to check that packing changes nothing a run reports.

    python3 harness/python/compare_reports.py A/report.json B/report.json

For each (case, converter, runtime): verdict, message, classes, expected (the ledger's
reason) and precision must agree; timing, latency and the run's own fields are not compared.
Node names a library numbers itself (OpenVINO's `AvgPool_357407`) are compared without their
numbers, since they count what the process converted before. Prints results/s of each run and
every difference; exits 1 when any result differs.
"""

import json
import re
import sys

COMPARED = ("verdict", "message", "classes", "expected", "precision", "weights")
NUMBERED = re.compile(r"\b([A-Za-z]+)_\d+\b")


def load(path):
    report = json.load(open(path))
    results = {(r["case"], r["converter"], r["runtime"]): r for r in report["results"]}
    return report, results


def seen(result):
    out = {k: result.get(k) for k in COMPARED}
    if out["message"]:
        out["message"] = NUMBERED.sub(r"\1_#", out["message"])
    return out


def main():
    (a_report, a), (b_report, b) = load(sys.argv[1]), load(sys.argv[2])
    for name, report in ((sys.argv[1], a_report), (sys.argv[2], b_report)):
        n, s = len(report["results"]), report.get("duration_s")
        rate = f"{n / s:.1f} results/s" if s else "wall time unknown"
        print(f"{name}: {n} results, {rate}")
    differ = 0
    for key in sorted(set(a) | set(b)):
        if key not in a or key not in b:
            print(f"{key}: only in {'the first' if key in a else 'the second'}")
            differ += 1
            continue
        x, y = seen(a[key]), seen(b[key])
        if x != y:
            differ += 1
            fields = {k: (x[k], y[k]) for k in COMPARED if x[k] != y[k]}
            print(f"{key}: {fields}")
    packed = [r for r in b.values() if r.get("in_pack")] + [r for r in a.values() if r.get("in_pack")]
    for r in packed:
        print(f"{r['case']} {r['converter']}: alone {r['verdict']}, in its pack {r['in_pack'][:200]}")
    print(f"{differ} differing results, {len(packed)} verdicts that differ packed and alone")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
