"""pytest setup for the Python binding's tests (bindings/python/tests).

The tests import the zjq package from this checkout (bindings/python) and
load libzjq.so from the build (ZJQ_BUILD_DIR, as for tests/test_*.py) unless
ZJQ_LIBRARY says otherwise. Brokers and C workers come from the harness of
the black-box tests, tests/zjqtest.py, through the `env` fixture (the Env
that the tests in tests/ call `zjq`; here `zjq` is the package).

Sanitizer builds: libzjq built with ASan can only be loaded into a Python
that started with the ASan runtime, so CMake runs these tests with
LD_PRELOAD=libasan and leak detection off (CPython never frees everything
at exit), and sets ZJQ_PY_ASAN_PRELOAD. Here the processes the harness
starts (broker, zjq-worker, zjq) get the environment of scripts/test.sh
back, leak detection included; Python subprocesses that load libzjq get
python_env().
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("ZJQ_SOURCE_DIR") or os.path.dirname(os.path.dirname(
    os.path.dirname(HERE)))
PACKAGE_DIR = os.path.join(SOURCE_DIR, "bindings", "python")
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests"))
sys.path.insert(0, PACKAGE_DIR)

import zjqtest  # noqa: E402  (needs the path above)
from zjqtest import zjq as env  # noqa: E402,F401 (the Env fixture, named env here)

LIBRARY = os.environ.get("ZJQ_LIBRARY") or os.path.join(zjqtest.BUILD_DIR, "libzjq.so")
os.environ["ZJQ_LIBRARY"] = LIBRARY

_PYTHON_ENV = {"ZJQ_LIBRARY": LIBRARY, "PYTHONPATH": PACKAGE_DIR}
if os.environ.get("ZJQ_PY_ASAN_PRELOAD"):
    _PYTHON_ENV["LD_PRELOAD"] = os.environ.get("LD_PRELOAD", "")
    _PYTHON_ENV["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "")
    os.environ.pop("LD_PRELOAD", None)
    #  CMake appended exactly this (ENVIRONMENT_MODIFICATION string_append)
    suffix = ":detect_leaks=0"
    options = os.environ.get("ASAN_OPTIONS", "")
    if options.endswith(suffix):
        os.environ["ASAN_OPTIONS"] = options[:-len(suffix)]


def python_env(extra=None):
    """The environment for a Python subprocess that imports zjq."""
    full = dict(os.environ)
    full.pop("ZJQ_BROKER", None)
    full.update(_PYTHON_ENV)
    full.update(extra or {})
    return full


@pytest.fixture(autouse=True)
def _library():
    if not os.path.exists(LIBRARY):
        pytest.fail("libzjq not found at %s (ZJQ_BUILD_DIR=%s)" % (LIBRARY, zjqtest.BUILD_DIR))
