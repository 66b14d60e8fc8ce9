# shellcheck shell=bash
# scripts/lib.sh: shared by scripts/demo.sh and scripts/test.sh (sourced).

#  Run a command as root: directly if we are root, else through sudo.
zjq_as_root () {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "error: need root (or sudo) to run: $*" >&2
        return 1
    fi
}

#  Install the Debian packages named that are not installed yet; does
#  nothing (and needs no root) when all of them are there.
zjq_install_packages () {
    local missing=()
    local package
    for package in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$package")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: missing packages ${missing[*]} and no apt-get to install them" >&2
        return 1
    fi
    echo "==> installing: ${missing[*]}"
    zjq_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    zjq_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"
}

#  What building zjq needs.
# shellcheck disable=SC2034  # used by the scripts that source this file
ZJQ_BUILD_PACKAGES=(cmake make gcc libc6-dev pkg-config libzmq3-dev libczmq-dev libmsgpack-dev
                    libsodium-dev libmicrohttpd-dev python3)
#  And what its tests need on top.
# shellcheck disable=SC2034
#  (python3-aiohttp: examples/webapp and its test; python3-venv, -pip,
#  -setuptools, -wheel: `pip install` of bindings/python, offline; tmux:
#  the `zjq top` test; python3-prometheus-client: parsing /metrics.)
ZJQ_TEST_PACKAGES=(python3-pytest python3-zmq python3-msgpack tcpdump iproute2
                   python3-aiohttp python3-venv python3-pip python3-setuptools python3-wheel
                   tmux python3-prometheus-client)
#  And the fuzz harnesses (scripts/fuzz.sh): clang with libFuzzer.
# shellcheck disable=SC2034
ZJQ_FUZZ_PACKAGES=(clang)
