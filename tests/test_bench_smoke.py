"""bench/identity_quality.py at a tiny size: its scorer, and its quality goals on every dataset.

The benchmark itself (10k and 100k demo customers) is not part of the test suite; this runs
the same functions on 300 demo customers and the sample databases, in a few seconds.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "identity_quality.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("panorama_bench_identity_quality", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def samples(bench: ModuleType) -> None:
    """Load Sakila and Pagila (idempotent), or fail saying why."""
    loader = bench.load_samples_module()
    try:
        loader.load_sakila_mariadb(verbose=False)
        loader.load_pagila_postgres(verbose=False)
    except loader.SampleLoadError as exc:
        pytest.fail(f"cannot load the sample databases: {exc}", pytrace=False)


def test_pairwise_counts_pairs_not_records(bench: ModuleType) -> None:
    a, b, c, d, e = (("s", k) for k in "abcde")
    truth = {a: 1, b: 1, c: 1, d: 2, e: 2}
    quality = bench.pairwise({a: "x", b: "x", c: "y", d: "y", e: "z"}, truth)
    assert (quality.true_pairs, quality.predicted_pairs, quality.correct_pairs) == (4, 2, 1)
    assert (quality.precision, quality.recall) == (0.5, 0.25)
    assert quality.f1 == pytest.approx(1 / 3)
    assert quality.false_merges == [[c, d]]
    assert len(quality.splits) == 2  # identity 1 over x and y, identity 2 over y and z


def test_pairwise_unindexed_and_untracked_records(bench: ModuleType) -> None:
    a, b, c = ("s", "a"), ("s", "b"), ("s", "c")
    quality = bench.pairwise({a: "x", c: "x"}, {a: 1, b: 1})  # b never indexed, c unknown
    assert (quality.true_pairs, quality.predicted_pairs, quality.correct_pairs) == (1, 1, 0)


def test_demo_world_f1_goal(bench: ModuleType, tmp_path: Path) -> None:
    result = bench.bench_demo(300, tmp_path, isolate=False)
    assert result.stats.records > 600 and result.quality.true_pairs > 300
    assert result.quality.f1 >= bench.DEMO_F1_GOAL, "\n".join(result.lines())
    assert result.passed


def test_sakila_pagila_all_linked_and_nothing_else(bench: ModuleType, samples: None,
                                                   tmp_path: Path) -> None:
    result = bench.bench_sakila_pagila(tmp_path, isolate=False)
    assert result.stats.records == 2 * 599
    assert result.quality.true_pairs == result.quality.correct_pairs == 599
    assert result.quality.f1 == 1.0, "\n".join(result.lines())


@pytest.mark.parametrize("contacts", [False, True], ids=["companies", "contacts"])
def test_three_shops_no_false_merge(bench: ModuleType, tmp_path: Path, contacts: bool) -> None:
    # The contacts variant runs in a child process, as the benchmark does: that path is tested too.
    result = bench.bench_three_shops(tmp_path, contacts=contacts, isolate=contacts)
    assert result.stats.records == 599 + 59 + 93
    assert result.stats.isolated is contacts
    assert result.quality.false_pairs == 0, "\n".join(result.lines())
    assert result.passed, "\n".join(result.lines())  # the ELIZABETH BROWN trap kept apart


def test_missed_link_is_explained_with_values(bench: ModuleType, tmp_path: Path) -> None:
    # A truth that claims the ELIZABETH BROWN trap is one customer: the missed pair is explained.
    data_dir = bench.load_samples_module().default_data_dir()
    sakila, northwind = bench.TRAP
    truth = {sakila: "one", northwind: "one"}
    result, cluster = bench.score(
        "trap-as-one", "", bench.CONFIGS / "sakila-chinook-northwind.yaml",
        bench.bench_environ(tmp_path, PANORAMA_SAMPLE_DATA=str(data_dir)), truth,
        isolate=False, examples=1)
    assert cluster[sakila] != cluster[northwind]
    assert (result.quality.true_pairs, result.quality.missed_pairs) == (1, 1)
    assert "missed identities by reason: no shared key, and no fuzzy link 1" in result.notes
    assert any("'Consolidated Holdings'" in line for line in result.examples)
