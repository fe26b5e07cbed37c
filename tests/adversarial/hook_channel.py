"""One webhook channel `hook` at `{url}/hook`, grouped by rule with short timings:
the channel file the data and disk attacks deliver through (format it with the
receiver's url)."""

CHANNELS = """
channels:
  - name: hook
    type: webhook
    url: {url}/hook
routes:
  - channels: [hook]
    group_by: [rule]
    group_wait: 0s
    group_interval: 200ms
    repeat_interval: 1h
"""
