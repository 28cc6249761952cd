"""The incremental view planner decides exactly what a full plan decides (issue 14).

After any change of some packs (added, removed, their files renamed or replaced), deciding again
only the names those packs offered must give the same winners, losers and reports as deciding
every name, in every conflict policy, for global and for a work profile's order."""

from __future__ import annotations

import random

import pytest

from synapse_core.builtin.conflict_policies import FirstWins, LastWins
from synapse_core.viewplan import Record, make_plan, same_relative_order


def contender(pack: str, index: int, name: str, scope: str = "models/Lora") -> Record:
    return {
        "path": f"{scope}/{name}.safetensors",
        "pack": pack,
        "resource_id": f"r{index}",
        "kind": "lora",
        "sha256": f"{index:032x}{len(pack) * 7 + len(name):032x}",
        "scope": scope,
        "key": name,
    }


def random_pack(rng: random.Random, pack: str) -> list[Record]:
    names = [f"n{rng.randrange(12)}" for _ in range(rng.randrange(0, 4))]
    return [
        contender(pack, i, name, rng.choice(["models/Lora", "models/VAE"]))
        for i, name in enumerate(dict.fromkeys(names))
    ]


def work_order(order: list[str], top: str | None) -> list[str]:
    return order if top is None or top not in order else [p for p in order if p != top] + [top]


@pytest.mark.parametrize("policy", [LastWins(), FirstWins()], ids=lambda p: p.name)
@pytest.mark.parametrize("seed", range(12))
def test_incremental_decisions_equal_full_ones(seed: int, policy) -> None:
    rng = random.Random(seed)
    packs = {f"P{i}": random_pack(rng, f"P{i}") for i in range(20)}
    order = list(packs)
    top = rng.choice([None, "P3"])
    plan = make_plan([c for p in work_order(order, top) for c in packs[p]], [], work_order(order, top), policy)
    assert plan.losers, "the packs must conflict, or this tests nothing"
    for _step in range(15):
        changed: set[str] = set()
        for _ in range(rng.randrange(1, 4)):
            action = rng.choice(["add", "remove", "change"])
            if action == "add":
                name = f"P{len(packs) + rng.randrange(1000)}"
                packs[name] = random_pack(rng, name)
                order.append(name)
                changed.add(name)
            elif action == "remove" and len(order) > 2:
                name = rng.choice(order)
                order.remove(name)
                packs.pop(name)
                changed.add(name)
            elif order:
                name = rng.choice(order)
                packs[name] = random_pack(rng, name)
                changed.add(name)
        now = work_order(order, top)
        contenders = [c for p in now for c in packs[p]]
        incremental = make_plan(contenders, [], now, policy, previous=plan, changed=changed)
        full = make_plan(contenders, [], now, policy)
        assert incremental.entries == full.entries
        assert sorted(map(repr, incremental.losers)) == sorted(map(repr, full.losers))
        assert sorted(map(repr, incremental.left_out)) == sorted(map(repr, full.left_out))
        plan = incremental


def test_a_changed_order_of_unchanged_packs_is_not_incremental() -> None:
    assert same_relative_order(["A", "B", "C"], ["A", "C"], {"B"})
    assert same_relative_order(["A", "B"], ["A", "N", "B"], {"N"})
    assert not same_relative_order(["A", "B", "C"], ["B", "A", "C"], set())
