"""Print how many cases an Autobahn spec file selects.

Runs under the Python 2.7 virtualenv, with Autobahn's own pattern matching,
so the expected count follows AUTOBAHN_CASES / AUTOBAHN_EXCLUDE exactly.
    python count_cases.py spec.json
"""
import json
import sys
import warnings

warnings.simplefilter("ignore")

from autobahntestsuite.case import (  # noqa: E402
    CaseBasename,
    CaseCategories,
    Cases,
    CaseSetname,
    CaseSubCategories,
)
from autobahntestsuite.caseset import CaseSet  # noqa: E402

with open(sys.argv[1]) as f:
    spec = json.load(f)
case_set = CaseSet(CaseSetname, CaseBasename, Cases, CaseCategories, CaseSubCategories)
print(len(case_set.parseSpecCases(spec)))
