#!/usr/bin/env bash
# The baselines bench/logtail.py compares against (issue 16, Speed): fail2ban 1.0.2
# and CrowdSec 1.4.6 from Debian, unpacked into .cache/baselines/ and never
# installed. Installing fail2ban starts a service that edits the host's firewall,
# and crowdsec's postinst registers machines; `apt-get download` + `dpkg-deb -x`
# runs no maintainer script. Run by deploy/setup.sh with VIGIL_BASELINES=1, or by
# the bench when .cache/baselines/ is missing. Safe to run again.
#
#   .cache/baselines/bin/fail2ban-regex     fail2ban's own script, its Python path set
#   .cache/baselines/filter.d/              fail2ban's filters
#   .cache/baselines/bin/crowdsec           crowdsec -c .cache/baselines/crowdsec/config.yaml
#   .cache/baselines/crowdsec/              config, the nginx/http items of Debian's
#                                           offline hub snapshot (the ones its postinst
#                                           enables), data files, a local API of its own
#                                           on 127.0.0.1:18089 with its own SQLite file
set -euo pipefail
cd "$(dirname "$0")/.."
out=$PWD/.cache/baselines
root=$out/root
mkdir -p "$out/debs" "$root" "$out/bin"

if ! ls "$out"/debs/fail2ban_*.deb "$out"/debs/crowdsec_*.deb >/dev/null 2>&1; then
  echo "baselines: fetching the fail2ban and crowdsec packages (not installed)"
  (cd "$out/debs" && apt-get download fail2ban crowdsec >/dev/null 2>&1) || {
    echo "baselines: apt-get download fail2ban crowdsec failed (no Debian archive reachable?)" >&2
    exit 1
  }
fi
for deb in "$out"/debs/*.deb; do
  dpkg-deb -x "$deb" "$root"
done

# fail2ban-regex with fail2ban's modules from the unpacked tree
f2b_py=$(ls -d "$root"/usr/lib/python3/dist-packages)
cat >"$out/bin/fail2ban-regex" <<EOF
#!/bin/sh
PYTHONPATH="$f2b_py" exec python3 "$root/usr/bin/fail2ban-regex" "\$@"
EOF
chmod +x "$out/bin/fail2ban-regex"
ln -sfn "$root/etc/fail2ban/filter.d" "$out/filter.d"

# crowdsec: a configuration of its own, the nginx and http items of the hub snapshot
cs=$out/crowdsec
hub=$root/usr/share/crowdsec/hub
rm -rf "$cs"
mkdir -p "$cs/etc" "$cs/data" "$cs/log"
cp "$root"/usr/share/crowdsec/data/* "$cs/data/"
cp -r "$root/etc/crowdsec/patterns" "$cs/etc/patterns"
cp "$root/etc/crowdsec/profiles.yaml" "$root/etc/crowdsec/simulation.yaml" "$cs/etc/"
: >"$cs/etc/acquis.yaml"
items="
parsers/s00-raw/crowdsecurity/syslog-logs.yaml
parsers/s01-parse/crowdsecurity/nginx-logs.yaml
parsers/s02-enrich/crowdsecurity/dateparse-enrich.yaml
parsers/s02-enrich/crowdsecurity/http-logs.yaml
parsers/s02-enrich/crowdsecurity/whitelists.yaml
collections/crowdsecurity/nginx.yaml
collections/crowdsecurity/base-http-scenarios.yaml
collections/crowdsecurity/http-cve.yaml
"
items="$items $(cd "$hub" && ls scenarios/crowdsecurity/http-*.yaml scenarios/crowdsecurity/nginx-*.yaml)"
for item in $items; do
  # crowdsec wants <kind>/<stage>/<file> in its config folder: the vendor is stripped
  dest=$cs/etc/$(dirname "$(dirname "$item")")/$(basename "$item")
  mkdir -p "$(dirname "$dest")"
  ln -sfn "$hub/$item" "$dest"
done
cat >"$cs/config.yaml" <<EOF
common:
  daemonize: false
  log_media: file
  log_level: warning
  log_dir: $cs/log/
  working_dir: .
config_paths:
  config_dir: $cs/etc/
  data_dir: $cs/data/
  simulation_path: $cs/etc/simulation.yaml
  hub_dir: $hub/
  index_path: $hub/.index.json
  notification_dir: $cs/etc/notifications/
  plugin_dir: $root/usr/lib/crowdsec/plugins/
crowdsec_service:
  acquisition_path: $cs/etc/acquis.yaml
  parser_routines: 1
  buckets_routines: 1
  output_routines: 1
db_config:
  type: sqlite
  db_path: $cs/data/crowdsec.db
api:
  client:
    credentials_path: $cs/etc/local_api_credentials.yaml
  server:
    listen_uri: 127.0.0.1:18089
    profiles_path: $cs/etc/profiles.yaml
prometheus:
  enabled: false
EOF
# the agent sends what it decides to a local API even in one-shot mode: its own,
# with a machine registered in its own SQLite file (no Central API: no online_client)
"$root/usr/bin/cscli" -c "$cs/config.yaml" --error machines add bench --auto --force \
  -f "$cs/etc/local_api_credentials.yaml" >/dev/null
cat >"$out/bin/crowdsec" <<EOF
#!/bin/sh
exec "$root/usr/bin/crowdsec" -c "$cs/config.yaml" "\$@"
EOF
chmod +x "$out/bin/crowdsec"
echo "baselines: ready in $out ($(ls "$out"/debs))"
