#!/usr/bin/env bash
# The build steps, written once: the Makefile (`make install`, `make proto`) and
# the image builder stage (deploy/Dockerfile) both run them from here, so a
# container is built exactly as a checkout is.
#
#   deploy/build.sh uv                    print the uv to use; when none is on PATH,
#                                         install uv into .tools/ (python3 -m venv + pip)
#   deploy/build.sh install dev [ARG…]    .venv with every dependency group (developers, CI)
#   deploy/build.sh install build [ARG…]  .venv with the runtime dependencies and the proto compiler
#   deploy/build.sh install image [ARG…]  .venv with the runtime dependencies only, bytecode compiled
#   deploy/build.sh proto                 generate providercenter/… from proto/ (needs `install dev` or `build`)
#
# Every install is `uv sync --frozen`: exactly what uv.lock says, never a re-resolve.
# ARGs go to `uv sync` (the image uses --no-install-project for a dependencies-only layer).
set -euo pipefail

UV_VERSION=0.13.9
cd "$(dirname "${BASH_SOURCE[0]}")/.."

uv_path() {
    if command -v uv >/dev/null 2>&1; then
        command -v uv
        return
    fi
    if [[ ! -x .tools/bin/uv ]]; then
        echo "uv is not on PATH: installing uv $UV_VERSION into .tools/" >&2
        python3 -m venv .tools
        .tools/bin/pip install --quiet --disable-pip-version-check --no-cache-dir "uv==$UV_VERSION"
    fi
    echo .tools/bin/uv
}

install() {
    local mode=${1:-dev}
    (($#)) && shift
    local uv
    uv=$(uv_path)
    case $mode in
        dev) "$uv" sync --frozen --all-groups "$@" ;;
        build) "$uv" sync --frozen --no-dev --group build "$@" ;;
        image)
            # An exact sync: removes the build group's packages from the builder's .venv.
            "$uv" sync --frozen --no-dev --compile-bytecode "$@"
            # The project is installed editable (its source stays at the image's /app);
            # compile it too, since a read-only root filesystem cannot cache bytecode.
            local sources=(services)
            [[ -d providercenter ]] && sources+=(providercenter)
            .venv/bin/python -m compileall -q "${sources[@]}"
            ;;
        *)
            echo "deploy/build.sh install: unknown mode '$mode' (dev, build or image)" >&2
            return 2
            ;;
    esac
}

proto() {
    local protos
    mapfile -t protos < <(find proto -name '*.proto' | sort)
    .venv/bin/python -m grpc_tools.protoc -I proto --python_out=. --grpc_python_out=. --pyi_out=. "${protos[@]}"
}

case ${1:-} in
    uv) uv_path ;;
    install) shift; install "$@" ;;
    proto) proto ;;
    *)
        sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
