#!/usr/bin/env bash
# Installs the Debian 12 packages cipherpulse needs to build, test and run, but only those
# that are missing (apt-get runs only when something is). Sourced by test.sh and demo.sh.
set -euo pipefail

CIPHERPULSE_PACKAGES=(
  # toolchain
  g++ cmake ninja-build pkg-config ccache git
  # libraries
  libgmp-dev libssl-dev libcpp-httplib-dev nlohmann-json3-dev libsqlite3-dev libspdlog-dev
  libcurl4-openssl-dev libcli11-dev libtomlplusplus-dev libsdbus-c++-dev
  libgtest-dev libbenchmark-dev libeigen3-dev
  # test peers and tools: openssl CLI, Python for black-box tests and the SMTP server
  openssl curl python3 python3-aiosmtpd dbus dbus-daemon python3-dbus python3-gi
)

cipherpulse_missing_packages() {
  local missing=()
  for pkg in "${CIPHERPULSE_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  echo "${missing[@]:-}"
}

cipherpulse_install_deps() {
  local missing
  missing="$(cipherpulse_missing_packages)"
  if [[ -z "${missing// /}" ]]; then
    return 0
  fi
  echo "==> installing missing Debian packages: $missing"
  local sudo=""
  if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null; then
      sudo="sudo"
    else
      echo "error: missing packages ($missing) and not root; install them first" >&2
      return 1
    fi
  fi
  # shellcheck disable=SC2086
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # shellcheck disable=SC2086
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
}
