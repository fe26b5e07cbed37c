"""The `logtail` collector: collector.py (settings, sample), tailer.py (paths,
rotation, start), follow.py (one open file, lines), identity.py (which file),
sink.py (the hook for what reads the lines)."""
