"""`pip install` of bindings/python into a virtual environment, then use it
from outside the checkout, finding libzjq.so each documented way."""

import os
import shutil
import subprocess
import sys

import zjqtest as zt
from conftest import LIBRARY, PACKAGE_DIR, python_env

SCRIPT = r"""
import sys, zjq
assert zjq.__file__.startswith(sys.argv[1]), zjq.__file__
with zjq.connect_sync(sys.argv[2]) as client:
    print(client.submit("echo", b"installed").result(timeout=60).decode())
"""


def run(argv, env=None, cwd=None, timeout=300):
    proc = subprocess.run([str(a) for a in argv], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, env=env, cwd=cwd, timeout=zt.T(timeout))
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, "%s failed (%d):\n%s" % (argv, proc.returncode, out[-5000:])
    return out


def test_pip_install_and_find_library(env, tmp_path):
    # Build from a copy: pip builds in the source tree
    source = tmp_path / "src"
    shutil.copytree(PACKAGE_DIR, source,
                    ignore=shutil.ignore_patterns("tests", "__pycache__", "build", "*.egg-info"))
    venv = tmp_path / "venv"
    # --system-site-packages: setuptools and wheel from Debian, nothing downloaded
    run([sys.executable, "-m", "venv", "--system-site-packages", venv])
    python = venv / "bin" / "python"
    base = python_env()
    base.pop("PYTHONPATH")                  # only the installed copy
    run([python, "-m", "pip", "install", "--no-build-isolation", "--no-index", "--no-deps",
         source], env=base)
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
               env=base).strip()

    env.start_broker()
    env.start_worker("echo", builtin="echo")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    # 1. $ZJQ_LIBRARY
    out = run([python, "-c", SCRIPT, site, env.endpoint], env=base, cwd=outside)
    assert out.strip() == "installed"
    # 2. ctypes.util.find_library, here through LD_LIBRARY_PATH
    found = dict(base)
    found.pop("ZJQ_LIBRARY")
    found["LD_LIBRARY_PATH"] = os.path.dirname(LIBRARY)
    out = run([python, "-c", SCRIPT, site, env.endpoint], env=found, cwd=outside)
    assert out.strip() == "installed"
