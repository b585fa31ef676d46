"""The ordering algorithms on random graphs. Algorithm 1 (Sec. 2.2): a literal transcription
of the paper's pseudo-code is the reference. `scc`: strongly connected components in
topological order, checked against brute-force reachability, and never worse than Algorithm 1
inside cycles."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dscoder.data.repo_docs.document import (dependency_order, eades_lin_smyth, respected, scc_order, sift,
                                     strongly_connected)

names = st.lists(st.text(alphabet="ab/._z", min_size=1, max_size=5), min_size=1, max_size=18, unique=True)


@st.composite
def graphs(draw, acyclic: bool = False):
    nodes = draw(names)
    n = len(nodes)
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n))
    if acyclic:  # a depends on b only when a comes later in a hidden random order
        rank = draw(st.permutations(range(n)))
        pairs = [(a, b) for a, b in pairs if rank[a] > rank[b]]
    return nodes, [(nodes[a], nodes[b]) for a, b in pairs]


def paper_algorithm1(files: list[str], edges: list[tuple[str, str]]) -> tuple[list[str], int]:
    """Algorithm 1 as printed: O(n^2) argmin, HASDEPENDENCY(fileA, fileB) per pair."""
    has_dep = set(edges)
    graphs_: dict[str, list[str]] = {f: [] for f in files}
    in_degree = {f: 0 for f in files}
    for a in files:
        for b in files:
            if a != b and (a, b) in has_dep:  # fileA depends on fileB
                graphs_[b].append(a)
                in_degree[a] += 1
    # getDisconnectedSubgraphs: undirected reachability, subgraphs by their smallest file
    undirected = {f: set(graphs_[f]) for f in files}
    for b, succ in graphs_.items():
        for a in succ:
            undirected[a].add(b)
    seen, subgraphs = set(), []
    for f in sorted(files):
        if f in seen:
            continue
        comp, stack = set(), [f]
        while stack:
            x = stack.pop()
            if x not in comp:
                comp.add(x)
                stack.extend(undirected[x] - comp)
        seen |= comp
        subgraphs.append(comp)
    all_results, broken = [], 0
    for sub in subgraphs:
        results: list[str] = []
        while len(results) != len(sub):
            file = min((f for f in sub if f not in results), key=lambda f: (in_degree[f], f))
            broken += in_degree[file] > 0
            for node in graphs_[file]:
                in_degree[node] -= 1
            results.append(file)
        all_results += results
    return all_results, broken


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_matches_the_papers_pseudo_code(g):
    nodes, edges = g
    got = dependency_order(nodes, edges)
    assert (got.order, got.cycles_broken) == paper_algorithm1(nodes, edges)


@settings(max_examples=200, deadline=None)
@given(graphs())
def test_every_node_exactly_once(g):
    nodes, edges = g
    order = dependency_order(nodes, edges).order
    assert sorted(order) == sorted(nodes) and len(order) == len(set(order))


@pytest.mark.parametrize("ordering", [dependency_order, scc_order], ids=["paper", "scc"])
@settings(max_examples=200, deadline=None)
@given(g=graphs(acyclic=True))
def test_on_a_dag_every_edge_is_respected(ordering, g):
    nodes, edges = g
    got = ordering(nodes, edges)
    pos = {n: i for i, n in enumerate(got.order)}
    assert all(pos[b] < pos[a] for a, b in edges if a != b)
    assert got.cycles_broken == 0


@settings(max_examples=200, deadline=None)
@given(graphs())
def test_subgraphs_contiguous_and_minimal_in_degree_rule_at_every_step(g):
    nodes, edges = g
    got = dependency_order(nodes, edges)
    deps = {(a, b) for a, b in edges if a != b}
    neighbours: dict[str, set[str]] = {n: set() for n in nodes}
    for a, b in deps:
        neighbours[a].add(b)
        neighbours[b].add(a)
    components = {frozenset(_component(n, neighbours)) for n in nodes}
    start = 0
    for comp in sorted(components, key=min):  # one after another, by their smallest node
        assert set(got.order[start : start + len(comp)]) == comp
        start += len(comp)
    assert got.subgraphs == len(components)
    placed: set[str] = set()
    broken = 0
    for n in got.order:
        remaining = _component(n, neighbours) - placed
        indeg = {m: sum(1 for a, b in deps if a == m and b not in placed) for m in remaining}
        best = min(indeg.values())
        assert indeg[n] == best  # the minimal in-degree, not necessarily zero
        assert n == min(m for m in remaining if indeg[m] == best)  # ties: path order
        broken += indeg[n] > 0
        placed.add(n)
    assert broken == got.cycles_broken


def _component(n: str, neighbours: dict[str, set[str]]) -> set[str]:
    comp, stack = set(), [n]
    while stack:
        x = stack.pop()
        if x not in comp:
            comp.add(x)
            stack.extend(neighbours[x] - comp)
    return comp


def test_cycle_is_broken_at_the_smallest_path():
    got = dependency_order(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a")])
    assert got.order == ["a", "c", "b"] and got.cycles_broken == 1 and got.subgraphs == 1


def test_edges_to_unknown_nodes_and_self_edges_are_ignored():
    got = dependency_order(["x", "y"], [("x", "x"), ("x", "nowhere"), ("y", "x")])
    assert got.order == ["x", "y"] and got.cycles_broken == 0 and got.subgraphs == 1


# ---------------------------------------------------------------------------- scc


def reachable(nodes, edges) -> dict[str, set[str]]:
    """Brute force: every node reachable from each node along edges (a -> b)."""
    succ = {n: {b for a, b in edges if a == n and b != n} for n in nodes}
    out = {}
    for n in nodes:
        seen, stack = set(), list(succ[n])
        while stack:
            x = stack.pop()
            if x not in seen:
                seen.add(x)
                stack.extend(succ[x])
        out[n] = seen
    return out


def on_a_cycle(nodes, edges) -> set[tuple[str, str]]:
    reach = reachable(nodes, edges)
    return {(a, b) for a, b in edges if a != b and a in reach[b]}


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_components_are_mutual_reachability(g):
    nodes, edges = g
    comp = strongly_connected(nodes, edges)
    reach = reachable(nodes, edges)
    for a in nodes:
        for b in nodes:
            same = a == b or (b in reach[a] and a in reach[b])
            assert (comp[a] == comp[b]) == same


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_every_acyclic_edge_respected_and_in_cycle_edges_at_least_as_algorithm_1(g):
    nodes, edges = g
    got = scc_order(nodes, edges)
    assert sorted(got.order) == sorted(set(nodes))
    cyclic = on_a_cycle(nodes, edges)
    acyclic = {(a, b) for a, b in edges if a != b} - cyclic
    assert respected(got.order, acyclic) == len(acyclic)
    paper = dependency_order(nodes, edges).order
    assert respected(got.order, cyclic) >= respected(paper, cyclic)
    pos = {n: i for i, n in enumerate(got.order)}
    assert got.cycles_broken == len({a for a, b in set(edges) if a != b and pos[b] > pos[a]})


@settings(max_examples=200, deadline=None)
@given(graphs())
def test_weakly_connected_subgraphs_stay_contiguous_like_algorithm_1(g):
    nodes, edges = g
    got, paper = scc_order(nodes, edges), dependency_order(nodes, edges)
    assert got.subgraphs == paper.subgraphs
    undirected = {(a, b) for a, b in edges} | {(b, a) for a, b in edges}
    reach = reachable(nodes, undirected)
    components = sorted({frozenset(reach[n] | {n}) for n in nodes}, key=min)
    start = 0
    for comp in components:  # one after another, by their smallest node
        assert set(got.order[start: start + len(comp)]) == comp
        start += len(comp)


@pytest.mark.parametrize("ordering", [dependency_order, scc_order], ids=["paper", "scc"])
@settings(max_examples=100, deadline=None)
@given(g=graphs(), rnd=st.randoms(use_true_random=False))
def test_deterministic_whatever_the_input_order_and_repeats(ordering, g, rnd: random.Random):
    nodes, edges = g
    first = ordering(nodes, edges)
    shuffled_nodes, shuffled_edges = list(nodes), edges * 2
    rnd.shuffle(shuffled_nodes)
    rnd.shuffle(shuffled_edges)
    assert ordering(shuffled_nodes, shuffled_edges) == first


@settings(max_examples=200, deadline=None)
@given(graphs())
def test_eades_lin_smyth_is_a_permutation_and_exact_on_dags(g):
    nodes, edges = g
    order = eades_lin_smyth(nodes, edges)
    assert sorted(order) == sorted(set(nodes))
    dag = [(a, b) for a, b in edges if a != b and a not in reachable(nodes, edges)[b]]
    if len(dag) == len([e for e in edges if e[0] != e[1]]):
        assert respected(order, dag) == len(dag)


def test_algorithm_1_breaks_an_acyclic_edge_that_scc_keeps():
    # b and c import each other; a imports c. Every in-degree is 1, so Algorithm 1 takes
    # a first (path order) and a lands before c, though a -> c lies on no cycle.
    nodes, edges = ["a", "b", "c"], [("a", "c"), ("b", "c"), ("c", "b")]
    paper = dependency_order(nodes, edges)
    assert paper.order == ["a", "b", "c"]
    got = scc_order(nodes, edges)
    assert got.order == ["b", "c", "a"] and got.cycles_broken == 1 and got.subgraphs == 1


def test_inside_a_component_the_best_of_the_candidates_is_kept():
    # A 4-cycle with a chord: Eades-Lin-Smyth and Algorithm 1 on the component leave one
    # edge backward; no order of a cycle can do better.
    edges = [("a", "b"), ("b", "c"), ("c", "d"), ("d", "a"), ("a", "c")]
    got = scc_order("abcd", edges)
    assert respected(got.order, edges) == len(edges) - 1


@settings(max_examples=200, deadline=None)
@given(graphs(), st.randoms(use_true_random=False))
def test_sift_never_loses_and_ends_where_no_single_move_gains(g, rnd: random.Random):
    nodes, edges = g
    edges = sorted(set(edges))  # an edge counts once
    start = sorted(set(nodes))
    rnd.shuffle(start)
    got = sift(start, edges)
    assert sorted(got) == sorted(start)
    assert respected(got, edges) >= respected(start, edges)
    for i, v in enumerate(got):  # a local optimum: no file moved elsewhere does better
        rest = got[:i] + got[i + 1:]
        for j in range(len(got)):
            assert respected(rest[:j] + [v] + rest[j:], edges) <= respected(got, edges)
    assert sift(start, edges, budget=0) == start
