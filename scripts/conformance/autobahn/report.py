#!/usr/bin/env python3
"""Summarise one Autobahn|Testsuite report (index.json) as one line.

    report.py --role server --agent duplex --expected 301 reports/index.json

prints

    autobahn server: N ok, N non-strict, N informational, N unimplemented, N failed

followed, only when something is wrong, by the offending case ids (at most
MAX_LISTED of them) and by the reason the run does not count. Exits 0 only
if the report holds exactly the expected number of cases for the agent and
none of them is FAILED, NON-STRICT or UNIMPLEMENTED, and every case's close
behaviour is OK or INFORMATIONAL.

A case is counted once: as "failed" if its behavior is FAILED (or anything
Autobahn does not define) or its behaviorClose is not OK/INFORMATIONAL,
otherwise under its behavior.
"""

import argparse
import json
import sys

MAX_LISTED = 30

# Autobahn's behavior values, in the order of the summary line.
CATEGORIES = [
    ("OK", "ok"),
    ("NON-STRICT", "non-strict"),
    ("INFORMATIONAL", "informational"),
    ("UNIMPLEMENTED", "unimplemented"),
    ("FAILED", "failed"),
]
CLOSE_PASSING = ("OK", "INFORMATIONAL")
# Behaviors that make the run fail even when the close was fine.
BEHAVIOR_FAILING = ("NON-STRICT", "UNIMPLEMENTED", "FAILED")


def case_key(case_id):
    """Sort "10.1.1" after "9.8.6": numeric parts compare as numbers."""
    return tuple(int(p) if p.isdigit() else p for p in case_id.split("."))


def classify(result):
    """Return the summary category of one case's result."""
    behavior = result.get("behavior")
    close = result.get("behaviorClose")
    if behavior not in ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED"):
        return "FAILED"
    if close not in CLOSE_PASSING:
        return "FAILED"
    return behavior


def summarise(index, agent, expected):
    """Return (summary counts, problem lines, passed) for one agent's results.

    `index` is the parsed index.json: {agent: {case id: {behavior, ...}}}.
    """
    counts = {name: 0 for name, _ in CATEGORIES}
    problems = []
    results = index.get(agent) if isinstance(index, dict) else None
    if not isinstance(results, dict):
        agents = ", ".join(sorted(index)) if isinstance(index, dict) else ""
        problems.append(
            "no results for agent %r in the report (agents: %s)"
            % (agent, agents or "none")
        )
        return counts, [], problems, False

    bad_cases = []
    for case_id in sorted(results, key=case_key):
        result = results[case_id]
        category = classify(result if isinstance(result, dict) else {})
        counts[category] += 1
        if category in BEHAVIOR_FAILING:
            bad_cases.append(
                "  %s: behavior %s, close %s"
                % (
                    case_id,
                    result.get("behavior") if isinstance(result, dict) else None,
                    result.get("behaviorClose") if isinstance(result, dict) else None,
                )
            )

    passed = not bad_cases
    total = len(results)
    if expected is not None and total != expected:
        problems.append("expected %d cases, the report has %d" % (expected, total))
        passed = False
    return counts, bad_cases, problems, passed


def summary_line(role, counts):
    """The one line the conformance script prints per role."""
    parts = ", ".join("%d %s" % (counts[key], label) for key, label in CATEGORIES)
    return "autobahn %s: %s" % (role, parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", required=True, help="server or client")
    parser.add_argument("--agent", default="duplex")
    parser.add_argument(
        "--expected", type=int, help="number of cases the run must contain"
    )
    parser.add_argument("index", help="path of Autobahn's index.json")
    args = parser.parse_args(argv)

    try:
        with open(args.index, encoding="utf-8") as f:
            index = json.load(f)
    except FileNotFoundError:
        print("autobahn %s: no report (%s is missing)" % (args.role, args.index))
        return 1
    except (OSError, ValueError) as e:
        print("autobahn %s: no usable report (%s)" % (args.role, e))
        return 1

    counts, bad_cases, problems, passed = summarise(index, args.agent, args.expected)
    print(summary_line(args.role, counts))
    for line in bad_cases[:MAX_LISTED]:
        print(line)
    if len(bad_cases) > MAX_LISTED:
        print("  ... and %d more" % (len(bad_cases) - MAX_LISTED))
    for problem in problems:
        print("  %s" % problem)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
