"""The boundary's Memo (engine/common/boundary.py): a container that passed the
last walk of its source unchanged is not walked again; everything else is, and
the bounds hold as without it."""

from __future__ import annotations

from typing import Any

from engine.common import boundary
from engine.common.boundary import MEMO_MIN, Memo, clean


def element(i: int) -> dict[str, Any]:
    return {"labels": {"ip": f"10.0.0.{i}"}, **{f"w{j}": j for j in range(MEMO_MIN)}}


def test_a_container_seen_unchanged_is_not_walked_again(monkeypatch: Any) -> None:
    memo = Memo()
    kept = element(1)
    assert clean({"keys": [kept, element(2)]}, memo=memo) == ({"keys": [kept, element(2)]}, None)
    walked: list[Any] = []
    mapping = boundary._Walk.mapping

    def spy(self: Any, v: Any, path: str, depth: int) -> Any:
        walked.append(v)
        return mapping(self, v, path, depth)

    monkeypatch.setattr(boundary._Walk, "mapping", spy)
    new = element(3)
    out, cut = clean({"keys": [kept, new]}, memo=memo)
    assert cut is None and out["keys"][0] is kept
    assert not any(v is kept for v in walked) and any(v is new for v in walked)


def test_what_is_new_is_still_cleaned_and_bounded() -> None:
    memo = Memo()
    kept = element(1)
    clean({"keys": [kept]}, memo=memo)
    bad = {**element(2), "line": "a\ud800b", "big": "x" * 100}
    out, cut = clean({"keys": [kept, bad]}, memo=memo, max_str=50)
    assert out["keys"][0] is kept
    assert out["keys"][1]["line"] == "a\ufffdb"
    assert out["keys"][1]["big"].startswith("x" * 50 + "…") and cut is not None
    # a remembered container still counts against max_items: the same cut as without
    items = {"keys": [kept, element(2)]}
    for max_items in (30, 15):  # room for the remembered one, or not even for it
        assert clean(items, max_items=max_items, memo=memo) == clean(items, max_items=max_items)
        assert clean(items, max_items=max_items)[1] is not None


def test_a_remembered_container_at_another_depth_is_walked_again() -> None:
    memo = Memo()
    kept = element(1)
    assert clean({"keys": [kept]}, memo=memo, max_depth=4) == ({"keys": [kept]}, None)
    out, cut = clean({"a": {"b": [kept]}}, memo=memo, max_depth=4)
    assert out["a"]["b"][0]["labels"] is None and cut is not None  # now 4 levels deep
