"""wstest, but a fuzzingserver listens on 127.0.0.1 only.

Autobahn's listenWS binds every interface (interface=''), and wstest has no
option for it; the conformance suites keep everything on loopback. Runs
under the Python 2.7 virtualenv with wstest's own arguments:
    python wstest_loopback.py -m fuzzingserver -s spec.json --webport 0
"""
import sys
import warnings

# cryptography warns on every start that Python 2 is deprecated.
warnings.simplefilter("ignore")

from autobahntestsuite import fuzzing  # noqa: E402
from autobahntestsuite.wstest import run  # noqa: E402

_listen_ws = fuzzing.listenWS


def listen_ws_on_loopback(factory, contextFactory=None, backlog=50, interface=""):
    return _listen_ws(factory, contextFactory, backlog, interface="127.0.0.1")


fuzzing.listenWS = listen_ws_on_loopback

if __name__ == "__main__":
    sys.argv[0] = "wstest"
    sys.exit(run())
