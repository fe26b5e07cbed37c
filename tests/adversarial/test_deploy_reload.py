"""Deploy patterns must not end hot reload (issue 14, C.8 and C.9).

A real `vigil run` per test; the journal's `config_loaded` (by "file change")
and the rule the API reports are the witnesses. Each pattern is followed by a
plain edit: a watcher left on the old folder would miss both.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adversarial._api_live import (
    last_seq,
    make_daemon,
    rule_expr,
    rules,
    wait_loaded,
    wait_ready,
    write,
)
from tests.integration.daemon import Daemon

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def sh(script: str, cwd: Path) -> None:
    """The deploy step as operators type it, with the real coreutils."""
    subprocess.run(["sh", "-ec", script], cwd=cwd, check=True, timeout=10)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = make_daemon(tmp_path, rules(10))
    yield d
    if d.proc is not None:
        code = d.stop()
        assert "Traceback" not in d.log(), d.log()[-3000:]
        assert code == 0


def configure_rules(d: Daemon, path: str) -> None:
    cfg = d.root / "vigil.yaml"
    cfg.write_text(cfg.read_text().replace("rules: [rules]", f"rules: [{path}]"))


def edit_and_check(d: Daemon, path: Path, limit: int) -> None:
    seq = last_seq(d)
    write(path, rules(limit))
    wait_loaded(d, seq, limit)


def test_symlink_swap_of_the_release(daemon: Daemon) -> None:
    """Capistrano, Ansible, git deploys: `current -> releases/v1`, swapped atomically."""
    root = daemon.root
    for release, limit in (("v1", 1), ("v2", 2), ("v3", 3)):
        write(root / "releases" / release / "rules" / "r.yaml", rules(limit))
    sh("ln -s releases/v1 current", root)
    configure_rules(daemon, "current/rules")
    daemon.start()
    wait_ready(daemon)
    assert rule_expr(daemon, "queue_deep") == "app.queue > 1"

    for release, limit in (("v2", 2), ("v3", 3), ("v1", 1)):
        seq = last_seq(daemon)
        sh(f"ln -s releases/{release} tmp && mv -T tmp current", root)
        wait_loaded(daemon, seq, limit)
        # later edits in the release now current are seen too
        edit_and_check(daemon, root / "current" / "rules" / "r.yaml", limit + 10)
        write(root / "current" / "rules" / "r.yaml", rules(limit))  # as it was
        wait_loaded(daemon, seq, limit)


def test_rules_folder_replaced_by_rename(daemon: Daemon) -> None:
    """`mv rules.new rules`: a new folder takes the old one's name."""
    root = daemon.root
    daemon.start()
    wait_ready(daemon)
    for limit in (4, 5):
        write(root / "rules.new" / "r.yaml", rules(limit))
        seq = last_seq(daemon)
        sh("rm -rf rules.old && mv rules rules.old && mv rules.new rules", root)
        wait_loaded(daemon, seq, limit)
        edit_and_check(daemon, root / "rules" / "r.yaml", limit + 10)
        # the old folder is no longer what `rules` means: editing it changes nothing
        seq = last_seq(daemon)
        write(root / "rules.old" / "r.yaml", rules(99))
        time.sleep(1.0)
        assert rule_expr(daemon, "queue_deep") == f"app.queue > {limit + 10}"


def test_rules_folder_deleted_and_recreated(daemon: Daemon) -> None:
    """`rm -rf rules`, then the folder is made again and filled."""
    root = daemon.root
    daemon.start()
    wait_ready(daemon)
    for limit in (6, 7):
        seq = last_seq(daemon)
        sh(f"rm -rf rules && mkdir rules && printf '%s' '{rules(limit)}' > rules/r.yaml", root)
        wait_loaded(daemon, seq, limit)
        edit_and_check(daemon, root / "rules" / "r.yaml", limit + 10)
    # deleted, and only recreated after a while (a reload in between may be rejected)
    sh("rm -rf rules", root)
    time.sleep(1.0)
    seq = last_seq(daemon)
    write(root / "rules" / "r.yaml", rules(8))
    wait_loaded(daemon, seq, 8)
    edit_and_check(daemon, root / "rules" / "r.yaml", 18)


def test_config_file_in_a_swapped_release(daemon: Daemon) -> None:
    """vigil.yaml itself reached through a symlink that a deploy swaps: its rules
    paths are relative to it, so they move with it."""
    root = daemon.root
    cfg = (root / "vigil.yaml").read_text()
    # the journal stays outside the releases: data_dir is absolute
    cfg = cfg.replace("data_dir: data", f"data_dir: {root / 'data'}")
    for release, limit in (("v1", 1), ("v2", 2)):
        write(root / "releases" / release / "vigil.yaml", cfg)
        write(root / "releases" / release / "rules" / "r.yaml", rules(limit))
        (root / "releases" / release / "channels").mkdir()
    sh("ln -s releases/v1 current", root)
    daemon.start("-c", str(root / "current" / "vigil.yaml"))  # the last -c counts
    wait_ready(daemon)
    assert rule_expr(daemon, "queue_deep") == "app.queue > 1"
    seq = last_seq(daemon)
    sh("ln -s releases/v2 tmp && mv -T tmp current", root)
    wait_loaded(daemon, seq, 2)
    edit_and_check(daemon, root / "current" / "rules" / "r.yaml", 12)


# -- C.9: edits during start-up ---------------------------------------------------------

SLOW_COLLECTOR = (
    "  - {name: slow, type: command, argv: [sh, -c, 'sleep 2; echo 1'], parse: number,"
    " timeout: 10s, interval: 1h}\n"
)


def test_edits_during_startup_are_not_lost(daemon: Daemon) -> None:
    """One edit right after `config_loaded`, one while the first collection (2 s) runs."""
    cfg = daemon.root / "vigil.yaml"
    cfg.write_text(cfg.read_text().replace("collectors:\n", "collectors:\n" + SLOW_COLLECTOR))
    daemon.start()  # returns once `started` and `config_loaded` are journaled
    seq = last_seq(daemon)
    write(daemon.root / "rules" / "r.yaml", rules(2))
    wait_loaded(daemon, seq, 2, timeout=15)
    seq = last_seq(daemon)
    write(daemon.root / "rules" / "r.yaml", rules(3))
    wait_loaded(daemon, seq, 3, timeout=15)
    wait_ready(daemon)
    edit_and_check(daemon, daemon.root / "rules" / "r.yaml", 4)
