"""Parsing and detection for log lines: pure code, no I/O, no clock of its own.

    formats   a line -> fields (nginx/apache combined, sshd, JSON by dotted path,
              fail2ban-style <HOST> patterns)
    patterns  named RE2 patterns over a field, behind one prefilter Set per field
    packs     the built-in packs: sqli, xss, traversal, cmdi, scanners
    windows   per-key count, rate, distinct and leaky-bucket windows, bounded
    settings  the YAML keys (DETECT_KEYS) -> DetectSettings
    sink      DetectSink: the follower's LineSink (lines(batch), values())

Wiring into the `logtail` collector (engine/collectors/logtail/): in its
`from_config`, split the collector's settings into the follower's keys and
`settings.DETECT_KEYS`, parse the latter with `settings.parse`, and when `format`
or `packs` is given `add_sink(DetectSink(parsed))`; `metric_names` then adds
`keys` and `totals`. The sink runs in the follower's reader thread, so its CPU
cost never delays the event loop.
"""
