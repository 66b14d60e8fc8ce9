"""Install the build into a temporary prefix and build programs against it
with pkg-config and with CMake's find_package(zjq)."""

import glob
import os
import re
import subprocess

import pytest

import zjqtest as zt

HELLO = r"""
#include <zjq.h>
#include <stdio.h>

int main (void)
{
    zjq_client_t *client = zjq_client_new ("tcp://127.0.0.1:1");
    if (!client)
        return 1;
    zjq_client_destroy (&client);
    zjq_worker_t *worker = zjq_worker_new ("tcp://127.0.0.1:1");
    if (!worker)
        return 1;
    zjq_worker_destroy (&worker);
    printf ("%s %s\n", zjq_version (), zjq_strerror (ZJQ_EQUEUEFULL));
    return 0;
}
"""

CONSUMER_CMAKE = r"""
cmake_minimum_required(VERSION 3.16)
project(zjq_consumer LANGUAGES C)
find_package(zjq REQUIRED)
add_executable(hello hello.c)
target_link_libraries(hello PRIVATE zjq::zjq)
"""

CONSUMER_CMAKE_STATIC = CONSUMER_CMAKE + r"""
add_executable(hello_static hello.c)
target_link_libraries(hello_static PRIVATE zjq::zjq_static)
"""


def sh(argv, cwd=None, env=None, timeout=300):
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(argv, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=zt.T(timeout))
    text = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, "%s failed (%d):\n%s" % (" ".join(argv), proc.returncode, text[-6000:])
    return text


def sanitizer_flags():
    """A sanitizer build's library needs the sanitizer runtime in its users."""
    cache = os.path.join(zt.BUILD_DIR, "CMakeCache.txt")
    with open(cache) as f:
        if re.search(r"^ZJQ_SANITIZE:BOOL=(ON|1|TRUE)", f.read(), re.M | re.I):
            return ["-fsanitize=address,undefined"]
    return []


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    root = tmp_path_factory.mktemp("install")
    prefix = str(root / "prefix")
    sh(["cmake", "--install", zt.BUILD_DIR, "--prefix", prefix])
    return prefix


def run_env(prefix):
    libdirs = sorted(set(os.path.dirname(p) for p in glob.glob(os.path.join(prefix, "**", "libzjq.so*"),
                                                               recursive=True)))
    return {"LD_LIBRARY_PATH": ":".join(libdirs)}


def check_hello(program, prefix):
    out = sh([program], env=run_env(prefix))
    assert out.strip() == "0.1.0 queue full", out


def test_installed_tree(prefix):
    for name in ("zjq-broker", "zjq-worker", "zjq"):
        assert os.access(os.path.join(prefix, "bin", name), os.X_OK), name
    for header in ("zjq.h", "zjq_client.h", "zjq_worker.h", "zjq_error.h"):
        assert os.path.exists(os.path.join(prefix, "include", header)), header
    assert glob.glob(os.path.join(prefix, "**", "libzjq.so"), recursive=True)
    assert glob.glob(os.path.join(prefix, "**", "libzjq.a"), recursive=True)
    assert glob.glob(os.path.join(prefix, "**", "pkgconfig", "zjq.pc"), recursive=True)
    assert glob.glob(os.path.join(prefix, "**", "cmake", "zjq", "zjqConfig.cmake"), recursive=True)
    out = sh([os.path.join(prefix, "bin", "zjq"), "--help"], env=run_env(prefix))
    assert "submit" in out


def test_pkg_config_consumer(prefix, tmp_path):
    pcdirs = sorted(set(os.path.dirname(p) for p in glob.glob(os.path.join(prefix, "**", "zjq.pc"),
                                                              recursive=True)))
    env = {"PKG_CONFIG_PATH": ":".join(pcdirs)}
    cflags = sh(["pkg-config", "--cflags", "zjq"], env=env).split()
    libs = sh(["pkg-config", "--libs", "zjq"], env=env).split()
    assert any(flag.startswith("-I" + prefix) for flag in cflags), \
        "zjq.pc does not point into the install prefix %s: --cflags gives %s" % (prefix, cflags)
    source = tmp_path / "hello.c"
    source.write_text(HELLO)
    program = str(tmp_path / "hello")
    sh(["cc", "-Wall", "-Werror", str(source), "-o", program] + cflags + libs + sanitizer_flags())
    check_hello(program, prefix)


def test_find_package_consumer(prefix, tmp_path):
    project = tmp_path / "consumer"
    project.mkdir()
    (project / "hello.c").write_text(HELLO)
    (project / "CMakeLists.txt").write_text(CONSUMER_CMAKE)
    build = str(tmp_path / "consumer-build")
    flags = " ".join(sanitizer_flags())
    sh(["cmake", "-S", str(project), "-B", build, "-DCMAKE_PREFIX_PATH=" + prefix,
        "-DCMAKE_C_FLAGS=" + flags, "-DCMAKE_EXE_LINKER_FLAGS=" + flags])
    sh(["cmake", "--build", build])
    check_hello(os.path.join(build, "hello"), prefix)


def test_static_consumers(prefix, tmp_path):
    """zjqConfig.cmake promises zjq::zjq_static; pkg-config --static too."""
    pcdirs = sorted(set(os.path.dirname(p) for p in glob.glob(os.path.join(prefix, "**", "zjq.pc"),
                                                              recursive=True)))
    env = {"PKG_CONFIG_PATH": ":".join(pcdirs)}
    source = tmp_path / "hello.c"
    source.write_text(HELLO)
    libdir = os.path.dirname(glob.glob(os.path.join(prefix, "**", "libzjq.a"), recursive=True)[0])
    cflags = ["-I" + os.path.join(prefix, "include")]    # --cflags: see test_pkg_config_consumer
    static_libs = sh(["pkg-config", "--static", "--libs", "zjq"], env=env).split()
    for lib in ("-lzjq", "-lczmq", "-lzmq", "-lmsgpackc"):
        assert lib in static_libs, static_libs
    # libzjq.a, then what zjq.pc's Libs.private names (as shared libraries:
    # Debian's own libczmq.pc cannot link czmq statically).
    pc_file = glob.glob(os.path.join(prefix, "**", "zjq.pc"), recursive=True)[0]
    private = [line.split(":", 1)[1].split() for line in open(pc_file)
               if line.startswith("Libs.private:")]
    assert private, "zjq.pc has no Libs.private"
    program = str(tmp_path / "hello_pc_static")
    sh(["cc", str(source), "-o", program, os.path.join(libdir, "libzjq.a")] + cflags + private[0]
       + sanitizer_flags())
    check_hello(program, prefix)

    project = tmp_path / "consumer"
    project.mkdir()
    (project / "hello.c").write_text(HELLO)
    (project / "CMakeLists.txt").write_text(CONSUMER_CMAKE_STATIC)
    build = str(tmp_path / "consumer-build")
    flags = " ".join(sanitizer_flags())
    sh(["cmake", "-S", str(project), "-B", build, "-DCMAKE_PREFIX_PATH=" + prefix,
        "-DCMAKE_C_FLAGS=" + flags, "-DCMAKE_EXE_LINKER_FLAGS=" + flags])
    sh(["cmake", "--build", build])
    check_hello(os.path.join(build, "hello_static"), prefix)
