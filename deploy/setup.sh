#!/usr/bin/env bash
# Sets up a fresh machine for vigil: the Debian packages the tests and benchmarks
# talk to (installed only when missing and we are root), then a virtual
# environment in .venv with vigil and its test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_pkgs=()
command -v promtool >/dev/null || apt_pkgs+=(prometheus)                          # bench: promtool baseline
command -v prometheus-alertmanager >/dev/null || apt_pkgs+=(prometheus-alertmanager)  # alertmanager channel test
command -v systemd-analyze >/dev/null || apt_pkgs+=(systemd)                       # unit file verification
command -v chromium >/dev/null || apt_pkgs+=(chromium)                            # web page test (Playwright drives it)
command -v faketime >/dev/null || apt_pkgs+=(faketime)                            # wall-clock step tests (libfaketime)
command -v tinyproxy >/dev/null || apt_pkgs+=(tinyproxy)                          # channels through a real HTTP proxy (test_channel_proxy)
# ban channel tests (in a network namespace). Debian neither enables nor starts nftables.service
# on install; never stop it below either: its ExecStop is `nft flush ruleset`, the host's rules
command -v nft >/dev/null || [ -x /usr/sbin/nft ] || apt_pkgs+=(nftables)
command -v tmux >/dev/null || apt_pkgs+=(tmux)                                    # vigil dashboard test under a real terminal (tmux)
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: ${apt_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # --no-install-recommends: the packages' daemons are started by tests, not by the system
    apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
    # Debian starts the services on install; tests start their own instances
    for s in prometheus prometheus-alertmanager prometheus-node-exporter tinyproxy; do
      (systemctl stop "$s" 2>/dev/null || pkill -f "/usr/bin/$s" 2>/dev/null) || true
    done
  else
    echo "setup: not root; skipping Debian packages: ${apt_pkgs[*]} (tests needing them will say they are skipped)"
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
# fail2ban and CrowdSec for bench/logtail.py, unpacked, never installed (deploy/baselines.sh)
if [ "${VIGIL_BASELINES:-0}" = 1 ]; then deploy/baselines.sh; fi
echo "setup: ready (.venv)"
