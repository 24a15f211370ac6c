#!/usr/bin/env python3
"""Tests of report.py; the autobahn suite runs them before trusting it.

    python3 -m unittest discover -s scripts/conformance/autobahn -p 'test_*.py'
"""

import io
import json
import os
import tempfile
import unittest
from contextlib import redirect_stdout

import report


def case(behavior="OK", close="OK"):
    return {"behavior": behavior, "behaviorClose": close, "duration": 1}


class ClassifyTest(unittest.TestCase):
    def test_each_behavior_with_a_clean_close_keeps_its_category(self):
        for behavior in ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED"):
            self.assertEqual(report.classify(case(behavior)), behavior)

    def test_informational_close_is_not_a_failure(self):
        self.assertEqual(report.classify(case("OK", "INFORMATIONAL")), "OK")

    def test_bad_close_makes_an_ok_case_failed(self):
        self.assertEqual(report.classify(case("OK", "FAILED")), "FAILED")
        self.assertEqual(report.classify(case("OK", "WRONG CODE")), "FAILED")
        self.assertEqual(report.classify(case("OK", "UNCLEAN")), "FAILED")

    def test_failed_and_unknown_behaviors_are_failed(self):
        self.assertEqual(report.classify(case("FAILED")), "FAILED")
        self.assertEqual(report.classify(case("WRONG CODE")), "FAILED")
        self.assertEqual(report.classify({}), "FAILED")


class SummariseTest(unittest.TestCase):
    def index(self):
        return {
            "duplex": {
                "1.1.1": case(),
                "10.1.1": case(),
                "2.1": case("INFORMATIONAL"),
                "6.4.1": case("NON-STRICT"),
                "7.3.6": case("OK", "FAILED"),
                "9.1.1": case(),
            },
            "other": {"1.1.1": case("FAILED")},
        }

    def test_counts_and_lists_offending_cases_in_numeric_order(self):
        counts, bad, problems, passed = report.summarise(self.index(), "duplex", 6)
        self.assertEqual(
            counts,
            {"OK": 3, "NON-STRICT": 1, "INFORMATIONAL": 1, "UNIMPLEMENTED": 0, "FAILED": 1},
        )
        self.assertEqual(
            bad,
            ["  6.4.1: behavior NON-STRICT, close OK", "  7.3.6: behavior OK, close FAILED"],
        )
        self.assertEqual(problems, [])
        self.assertFalse(passed)

    def test_a_clean_run_of_the_expected_size_passes(self):
        index = {"duplex": {"1.1.%d" % i: case() for i in range(1, 9)}}
        index["duplex"]["2.1"] = case("INFORMATIONAL", "INFORMATIONAL")
        counts, bad, problems, passed = report.summarise(index, "duplex", 9)
        self.assertTrue(passed)
        self.assertEqual((counts["OK"], counts["INFORMATIONAL"]), (8, 1))
        self.assertEqual((bad, problems), ([], []))

    def test_a_clean_run_with_missing_cases_fails(self):
        index = {"duplex": {"1.1.1": case()}}
        _, _, problems, passed = report.summarise(index, "duplex", 301)
        self.assertFalse(passed)
        self.assertEqual(problems, ["expected 301 cases, the report has 1"])

    def test_an_empty_report_fails(self):
        counts, _, problems, passed = report.summarise({}, "duplex", 301)
        self.assertFalse(passed)
        self.assertEqual(sum(counts.values()), 0)
        self.assertIn("no results for agent 'duplex'", problems[0])

    def test_unimplemented_fails_the_run(self):
        index = {"duplex": {"12.1.1": case("UNIMPLEMENTED", "OK")}}
        _, bad, _, passed = report.summarise(index, "duplex", 1)
        self.assertFalse(passed)
        self.assertEqual(bad, ["  12.1.1: behavior UNIMPLEMENTED, close OK"])


class MainTest(unittest.TestCase):
    def run_main(self, index, *args):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "index.json")
            if index is not None:
                with open(path, "w", encoding="utf-8") as f:
                    json.dump(index, f)
            out = io.StringIO()
            with redirect_stdout(out):
                code = report.main(["--role", "client", *args, path])
        return code, out.getvalue().splitlines()

    def test_prints_exactly_the_summary_line_when_clean(self):
        code, lines = self.run_main({"duplex": {"1.1.1": case()}}, "--expected", "1")
        self.assertEqual(code, 0)
        self.assertEqual(
            lines,
            ["autobahn client: 1 ok, 0 non-strict, 0 informational, 0 unimplemented, 0 failed"],
        )

    def test_caps_the_list_of_offending_cases(self):
        index = {"duplex": {"5.%d" % i: case("FAILED") for i in range(1, 41)}}
        code, lines = self.run_main(index, "--expected", "40")
        self.assertEqual(code, 1)
        self.assertEqual(lines[0], "autobahn client: 0 ok, 0 non-strict, 0 informational, 0 unimplemented, 40 failed")
        self.assertEqual(len(lines), 1 + report.MAX_LISTED + 1)
        self.assertEqual(lines[-1], "  ... and 10 more")

    def test_a_missing_report_fails_with_one_line(self):
        code, lines = self.run_main(None)
        self.assertEqual(code, 1)
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].startswith("autobahn client: no report ("))
        self.assertTrue(lines[0].endswith("index.json is missing)"))

    def test_a_truncated_report_fails_with_one_line(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "index.json")
            with open(path, "w", encoding="utf-8") as f:
                f.write('{"duplex": {"1.1.1": ')
            out = io.StringIO()
            with redirect_stdout(out):
                code = report.main(["--role", "server", path])
        self.assertEqual(code, 1)
        self.assertTrue(out.getvalue().startswith("autobahn server: no usable report ("))


if __name__ == "__main__":
    unittest.main()
