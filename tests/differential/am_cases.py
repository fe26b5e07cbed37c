"""The Alertmanager scenarios (see am_scenarios.py for how they are run).

Defaults: group_by [a] (one group per alert), group_wait 1s, group_interval 2s,
repeat_interval 1h, and the scenario's default receiver `default`. A group that
starts at t flushes at t+1, t+3, t+5 ...; events are put between those ticks so
that no comparison depends on which of two simultaneous things came first.
"""

from __future__ import annotations

from tests.differential.am_scenarios import (
    AmScenario,
    Inhibit,
    Route,
    Silence,
    fire,
    resolve,
)


def _both_resolve(t: float, *names: str) -> tuple:  # type: ignore[type-arg]
    return tuple(resolve(t, n) for n in names)


CASES: tuple[AmScenario, ...] = (
    # -- routing -------------------------------------------------------------------------
    AmScenario(
        "a01_first_match_wins",
        "the first matching route wins; a later route with the same matcher gets nothing",
        (fire(1, "x", team="db"), fire(1, "y", team="web"), *_both_resolve(5.8, "x", "y")),
        routes=(Route("db", ('team="db"',)), Route("db2", ('team="db"',))),
    ),
    AmScenario(
        "a02_continue",
        "continue: true lets the next matching route have the alert too",
        (
            fire(1, "x", "critical", team="db"),
            fire(1, "y", "warning", team="db"),
            *_both_resolve(5.8, "x", "y"),
        ),
        routes=(Route("pager", ('severity="critical"',), cont=True), Route("db", ('team="db"',))),
    ),
    AmScenario(
        "a03_continue_chain",
        "a chain of continue routes, ended by the first route without continue",
        (fire(1, "x", team="db"), resolve(5.8, "x")),
        routes=(
            Route("audit", ('team=~".+"',), cont=True),
            Route("db", ('team="db"',), cont=True),
            Route("db-all", ('team="db"',)),
            Route("never", ('team="db"',)),
        ),
    ),
    AmScenario(
        # Alertmanager's parent receiver is a vigil parent route with children; in a
        # flat vigil list the trailing catch-all is a sibling, and would get it (a42)
        "a38_continue_then_default",
        "an alert matched only by a continue route does not reach the default receiver",
        (fire(1, "x", team="web"), resolve(5.8, "x")),
        routes=(Route("audit", ('team=~".+"',), cont=True),),
        syntax="nested",
    ),
    AmScenario(
        "a42_continue_then_sibling",
        "a sibling after a continue route matches too, in Alertmanager as in vigil's flat list",
        (fire(1, "x", team="web"), fire(1, "y"), *_both_resolve(5.8, "x", "y")),
        routes=(Route("audit", ('team=~".+"',), cont=True), Route("all", ())),
    ),
    AmScenario(
        "a04_default_fallback",
        "an alert no route matches goes to the parent's (default) receiver",
        (fire(1, "x", team="ops"), fire(1, "y"), *_both_resolve(5.8, "x", "y")),
        routes=(Route("db", ('team="db"',)),),
    ),
    AmScenario(
        "a05_regex_alternatives",
        "a regex matcher with alternatives",
        (fire(1, "x", "critical"), fire(1, "y", "warning"), *_both_resolve(5.8, "x", "y")),
        routes=(Route("pager", ('severity=~"critical|emergency"',)),),
    ),
    AmScenario(
        "a06_regex_route",
        "a regex matcher on a label's value",
        (fire(1, "x", host="web-1"), fire(1, "y", host="web-x"), *_both_resolve(5.8, "x", "y")),
        routes=(Route("web", ('host=~"web-[0-9]+"',)),),
    ),
    AmScenario(
        "a07_regex_anchored",
        "regex matchers are anchored at both ends",
        (fire(1, "x", host="web-1"), fire(1, "y", host="web"), *_both_resolve(5.8, "x", "y")),
        routes=(Route("web", ('host=~"web"',)),),
    ),
    AmScenario(
        "a08_regex_missing_label",
        'a missing label is "" for a regex matcher: env=~".*" matches an alert without env',
        (fire(1, "x"), fire(1, "y", env="prod"), *_both_resolve(5.8, "x", "y")),
        routes=(Route("any-env", ('env=~".*"',)),),
    ),
    AmScenario(
        "a09_regex_optional_missing",
        'env=~"dev|" matches env=dev and an alert without env, not env=prod',
        (
            fire(1, "x"),
            fire(1, "y", env="dev"),
            fire(1, "z", env="prod"),
            *_both_resolve(5.8, "x", "y", "z"),
        ),
        routes=(Route("dev", ('env=~"dev|"',)),),
    ),
    AmScenario(
        "a10_equal_empty_missing",
        'env="" matches an alert without env',
        (fire(1, "x"), fire(1, "y", env="prod"), *_both_resolve(5.8, "x", "y")),
        routes=(Route("no-env", ('env=""',)),),
    ),
    AmScenario(
        "a11_not_equal",
        "team!=ops",
        (fire(1, "x", team="db"), fire(1, "y", team="ops"), *_both_resolve(5.8, "x", "y")),
        routes=(Route("not-ops", ('team!="ops"',)),),
        syntax="matchers",
    ),
    AmScenario(
        "a12_not_equal_missing",
        "env!=prod matches an alert without env",
        (fire(1, "x"), fire(1, "y", env="prod"), *_both_resolve(5.8, "x", "y")),
        routes=(Route("not-prod", ('env!="prod"',)),),
        syntax="matchers",
    ),
    AmScenario(
        "a13_not_regex",
        'host!~"web-.*", also on an alert without host',
        (
            fire(1, "x", host="db-1"),
            fire(1, "y", host="web-1"),
            fire(1, "z"),
            *_both_resolve(5.8, "x", "y", "z"),
        ),
        routes=(Route("not-web", ('host!~"web-.*"',)),),
        syntax="matchers",
    ),
    AmScenario(
        "a14_nested",
        "a child route under a matching parent; the parent takes what no child matches",
        (
            fire(1, "x", "critical", team="db"),
            fire(1, "y", "warning", team="db"),
            fire(1, "z", "critical", team="web"),
            *_both_resolve(5.8, "x", "y", "z"),
        ),
        routes=(
            Route("db", ('team="db"',), routes=(Route("db-pager", ('severity="critical"',)),)),
        ),
        syntax="nested",
    ),
    AmScenario(
        "a15_nested_inherits_timing",
        "a child route inherits its parent's group_wait (3s, not the scenario's 1s)",
        (fire(1, "x", "critical", team="db"), resolve(5.8, "x")),
        routes=(
            Route(
                "db",
                ('team="db"',),
                group_wait=3,
                routes=(Route("db-pager", ('severity="critical"',)),),
            ),
        ),
        syntax="nested",
    ),
    AmScenario(
        "a16_nested_continue_no_parent",
        "a child that matched with continue: true keeps the parent's receiver out",
        (
            fire(1, "x", "critical", team="db", host="y"),
            fire(1, "y", "warning", team="db", host="y"),
            *_both_resolve(5.8, "x", "y"),
        ),
        routes=(
            Route(
                "db",
                ('team="db"',),
                routes=(
                    Route("pager", ('severity="critical"',), cont=True),
                    Route("host-x", ('host="x"',)),
                ),
            ),
        ),
        syntax="nested",
    ),
    # -- grouping and timing -------------------------------------------------------------
    AmScenario(
        "a17_group_by_label",
        "group_by [host]: one notification per host",
        (
            fire(1, "x", host="a"),
            fire(1, "y", host="a"),
            fire(1, "z", host="b"),
            *_both_resolve(5.8, "x", "y", "z"),
        ),
        group_by=("host",),
    ),
    AmScenario(
        "a18_group_by_all",
        "group_by [...]: every alert is its own group",
        (fire(1, "x", host="a"), fire(1, "y", host="a"), *_both_resolve(5.8, "x", "y")),
        group_by=("...",),
    ),
    AmScenario(
        "a19_group_by_missing_label",
        "alerts without a group_by label form one group",
        (fire(1, "x"), fire(1, "y"), fire(1, "z", host="b"), *_both_resolve(5.8, "x", "y", "z")),
        group_by=("host",),
    ),
    AmScenario(
        "a20_group_wait_batches",
        "alerts arriving within group_wait go out together",
        (fire(1, "x"), fire(2, "y"), *_both_resolve(7.8, "x", "y")),
        group_by=("rule",),
        group_wait=3,
    ),
    AmScenario(
        "a21_group_interval_new_alert",
        "an alert joining a notified group waits for the next group_interval; the whole group is sent",
        (fire(1, "x"), fire(3, "y"), *_both_resolve(6, "x", "y")),
        group_by=("rule",),
        group_interval=3,
    ),
    AmScenario(
        "a22_resolve_waits_interval",
        "a resolve goes out at the group's next group_interval",
        (fire(1, "x"), resolve(3, "x")),
        group_interval=3,
    ),
    AmScenario(
        "a23_partial_resolve_no_resend",
        "one of two alerts resolves: one notification with both; nothing again until a change",
        (fire(1, "x"), fire(1, "y"), resolve(3, "x"), resolve(9.8, "y")),
        group_by=("rule",),
    ),
    AmScenario(
        "a24_repeat_interval",
        "repeat_interval 5s with group_interval 2s: reminders on the group's ticks",
        (fire(1, "x"), resolve(15.8, "x")),
        repeat_interval=5,
    ),
    AmScenario(
        "a25_group_restarts_after_resolve",
        "after its resolve the group is gone: a new alert waits group_wait again",
        (fire(1, "x"), resolve(3, "x"), fire(7, "y"), resolve(11.8, "y")),
        group_by=("rule",),
    ),
    AmScenario(
        "a36_change_waits_for_tick",
        "a resolve half a second after a tick waits for the next tick",
        (fire(1, "x"), resolve(4.5, "x")),
    ),
    # -- inhibition ----------------------------------------------------------------------
    AmScenario(
        "a26_inhibit_equal",
        "critical inhibits warning on the same host only",
        (
            fire(1, "c", "critical", host="a"),
            fire(1, "w", "warning", host="a"),
            fire(1, "v", "warning", host="b"),
            *_both_resolve(5.8, "c", "w", "v"),
        ),
        inhibit=(Inhibit(('severity="critical"',), ('severity="warning"',), ("host",)),),
    ),
    AmScenario(
        "a27_inhibit_source_resolves",
        "when the inhibiting alert resolves, the inhibited one is notified at its next tick",
        (
            fire(1, "c", "critical", host="a"),
            fire(1, "w", "warning", host="a"),
            resolve(5.8, "c"),
            resolve(9.8, "w"),
        ),
        inhibit=(Inhibit(('severity="critical"',), ('severity="warning"',), ("host",)),),
    ),
    AmScenario(
        "a28_mutual_inhibition",
        "alerts matching both sides do not inhibit each other; a target-only alert is inhibited",
        (
            fire(1, "x", "critical", team="db", host="a"),
            fire(1, "y", "critical", team="db", host="a"),
            fire(1, "z", "warning", team="db", host="a"),
            *_both_resolve(5.8, "x", "y", "z"),
        ),
        inhibit=(Inhibit(('severity="critical"',), ('team="db"',), ("host",)),),
    ),
    AmScenario(
        "a29_inhibit_missing_equal_label",
        "an equal label missing on both sides counts as equal",
        (fire(1, "c", "critical"), fire(1, "w", "warning"), *_both_resolve(5.8, "c", "w")),
        inhibit=(Inhibit(('severity="critical"',), ('severity="warning"',), ("host",)),),
    ),
    AmScenario(
        "a30_inhibit_regex",
        "regex matchers on both sides of an inhibit rule",
        (
            fire(1, "c", "critical", host="a"),
            fire(1, "w", "warning", host="a"),
            fire(1, "i", "info", host="a"),
            *_both_resolve(5.8, "c", "w", "i"),
        ),
        inhibit=(Inhibit(('severity=~"crit.*"',), ('severity=~"warn.*|info"',), ("host",)),),
    ),
    AmScenario(
        "a41_inhibit_regex_missing_label",
        'an inhibit target env=~"dev|" also takes an alert without env',
        (
            fire(1, "c", "critical", host="a"),
            fire(1, "w", "warning", host="a"),
            fire(1, "p", "warning", host="a", env="prod"),
            *_both_resolve(5.8, "c", "w", "p"),
        ),
        inhibit=(Inhibit(('severity="critical"',), ('env=~"dev|"',), ("host",)),),
    ),
    AmScenario(
        "a31_inhibit_not_equal_target",
        "an inhibit rule whose target side is team!=sre",
        (
            fire(1, "c", "critical", team="sre", host="a"),
            fire(1, "w", "warning", team="db", host="a"),
            fire(1, "s", "warning", team="sre", host="a"),
            *_both_resolve(5.8, "c", "w", "s"),
        ),
        inhibit=(Inhibit(('severity="critical"',), ('team!="sre"',), ("host",)),),
        syntax="inhibit_matchers",
    ),
    # -- silences ------------------------------------------------------------------------
    AmScenario(
        "a32_silence",
        "a silence mutes matching alerts only",
        (fire(1, "x", host="a"), fire(1, "y", host="b"), *_both_resolve(5.8, "x", "y")),
        silences=(Silence(('host="a"',), 0, 60),),
    ),
    AmScenario(
        "a33_silence_expires",
        "an alert whose silence expires is notified at its group's next tick",
        (fire(1, "x", host="a"), resolve(9.8, "x")),
        silences=(Silence(('host="a"',), 0, 5.8),),
    ),
    AmScenario(
        "a37_silence_expiry_waits_for_tick",
        "an alert whose silence expires between ticks is notified at the next tick",
        (fire(1, "x", host="a"), resolve(9.8, "x")),
        silences=(Silence(('host="a"',), 0, 4.5),),
    ),
    AmScenario(
        "a40_silence_regex_missing_label",
        'a silence env=~"dev|" also mutes an alert without env',
        (fire(1, "x"), fire(1, "y", env="prod"), *_both_resolve(5.8, "x", "y")),
        silences=(Silence(('env=~"dev|"',), 0, 60),),
    ),
    AmScenario(
        "a34_silence_regex",
        "a regex silence",
        (fire(1, "x", host="web-1"), fire(1, "y", host="db-1"), *_both_resolve(5.8, "x", "y")),
        silences=(Silence(('host=~"web-.*"',), 0, 60),),
    ),
)

# vigil differs on purpose: SPEC 1 says resolved notifications are sent also for
# alerts that were silenced (the incident opened by the firing notification must be
# closed); Alertmanager drops a silenced resolve.
SILENCED_RESOLVE = AmScenario(
    "a35_silenced_after_notified",
    "an alert notified as firing, silenced, then resolved",
    (fire(1, "x", host="a"), resolve(5, "x")),
    silences=(Silence(('host="a"',), 3, 60),),
)

# vigil differs on purpose: escalation and acknowledgements (Alertmanager has
# neither). Both programs get the same route; vigil's also escalates to `manager`
# after 4s while an alert is unacknowledged; alert y is acknowledged at 3s, after
# its first notification (an alert acknowledged before that is never notified).
ESCALATION = AmScenario(
    "a39_escalation_and_ack",
    "vigil escalates the unacknowledged alert x to manager; the acknowledged y is not escalated",
    (fire(1, "x"), fire(1, "y"), *_both_resolve(7.8, "x", "y")),
    receivers_extra=("manager",),
    escalate_after=4,
    acks=((3, "y"),),
)
