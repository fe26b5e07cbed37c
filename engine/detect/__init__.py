"""Parsing and detection for log lines: pure code, no I/O, no clock of its own.

    formats   a line -> fields (nginx/apache combined, sshd, JSON by dotted path,
              fail2ban-style <HOST> patterns)
    patterns  named RE2 patterns over a field, behind one prefilter Set per field
    packs     the built-in packs: sqli, xss, traversal, cmdi, scanners
    windows   per-key count, rate, distinct and leaky-bucket windows, bounded
    settings  the YAML keys (DETECT_KEYS) -> DetectSettings
    sink      DetectSink: the follower's LineSink (lines(batch), values())

Wired into the `logtail` collector (engine/collectors/logtail/collector.py): any
of `settings.DETECT_KEYS` among its settings makes it `add_sink(DetectSink(parse(
its settings)))`, and its sample gains `keys` and `totals`. The sink runs in the
follower's reader thread, so its CPU cost never delays the event loop. A rule's
annotations read the element as `it` (`{{ it.evidence }}`: the lines behind a hit).
"""
