"""Cell and macro genotypes: round trips, the source's best cell, errors, canonical keys, networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bio_assets.core.cnn.genotypes import CNN_OPERATIONS, DEAD_CELL_KEY, CellGenotype, MacroGenotype
from bio_assets.core.cnn.networks import NetworkSpec, SearchedNetwork


@pytest.mark.parametrize("nodes", [3, 4, 5, 6])
def test_random_cells_round_trip_through_both_strings(nodes):
    rng = np.random.default_rng(nodes)
    for _ in range(50):
        cell = CellGenotype.random(rng, (nodes, nodes))
        assert cell.nodes == nodes
        assert CellGenotype.parse(cell.code) == cell
        assert CellGenotype.from_nb201(cell.to_nb201()) == cell


def test_the_source_best_cell_decodes_to_the_published_edges():
    edges = CellGenotype.parse("3501-110-44-1").edges()
    assert edges == {
        (0, 1): "conv_3x3",
        (0, 2): "max_pool_3x3",
        (0, 3): "none",
        (0, 4): "skip_connect",
        (1, 2): "skip_connect",
        (1, 3): "skip_connect",
        (1, 4): "none",
        (2, 3): "avg_pool_3x3",
        (2, 4): "avg_pool_3x3",
        (3, 4): "skip_connect",
    }


def test_fixed_discriminator_style_example_and_nb201_string():
    assert (
        CellGenotype.parse("012-23-4").to_nb201()
        == "|none~0|+|skip_connect~0|conv_1x1~1|+|conv_1x1~0|conv_3x3~1|avg_pool_3x3~2|"
    )


@pytest.mark.parametrize(
    "code, message",
    [
        ("", "digit groups"),
        ("12", "digit groups"),
        ("012-2", "needs groups of [2, 1]"),
        ("012-2-4", "needs groups of [3, 2, 1]"),
        ("016-23-4", "operation digits must be 0..5"),
        ("0123456-012345-01234-0123-012-01-0", "3..6 nodes"),
        ("a12-23-4", "digit groups"),
    ],
)
def test_malformed_cell_codes_say_what_is_wrong(code, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        CellGenotype.parse(code)


def test_canonical_key_drops_edges_that_cannot_reach_the_output():
    # 0->1 conv_3x3 but node 1 feeds nothing: same function as the direct skip 0->2.
    assert CellGenotype.parse("31-0").key == CellGenotype.parse("01-0").key
    # An edge out of a node the input never reaches is dead too (node 1 has no input).
    assert CellGenotype.parse("001-30-0").key == CellGenotype.parse("001-00-0").key


def test_canonical_key_removes_unused_nodes_and_merges_relabelings():
    four = CellGenotype.parse("302-01-0")  # 0->1 conv3, 0->3 conv1, 1->3 skip; node 2 unused
    three = CellGenotype.parse("32-1")  # 0->1 conv3, 0->2 conv1, 1->2 skip
    assert four.key == three.key
    a = CellGenotype.parse("320-01-1")  # 0->1 conv3, 0->2 conv1, 1->3 skip, 2->3 skip
    b = CellGenotype.parse("230-01-1")  # the same with nodes 1 and 2 swapped
    assert a.key == b.key


def test_dead_cells_share_one_key():
    assert CellGenotype.parse("00-3").key == CellGenotype.parse("000-33-0").key == DEAD_CELL_KEY


def test_different_functions_keep_different_keys():
    assert CellGenotype.parse("32-1").key != CellGenotype.parse("33-1").key


def test_mutation_always_changes_the_function():
    rng = np.random.default_rng(0)
    cell = CellGenotype.parse("3501-110-44-1")
    for _ in range(200):
        child = cell.mutate(rng, 0.05)
        assert child.key != cell.key
        cell = child


@pytest.mark.parametrize(
    "code, cells, pools", [("5-[1]", 5, (1,)), ("4-[0,2]", 4, (0, 2)), ("3-[]", 3, ()), (" 2 - [ 0 , 1 ] ", 2, (0, 1))]
)
def test_macro_codes_parse_and_print(code, cells, pools):
    macro = MacroGenotype.parse(code)
    assert (macro.cells, macro.pools) == (cells, pools)
    assert MacroGenotype.parse(macro.code) == macro


@pytest.mark.parametrize(
    "code, message",
    [
        ("7-[1]", "1..6 cells"),
        ("3-[3]", "cell indices in 0..2"),
        ("3-[1,1]", "distinct"),
        ("3-[2,1]", "sorted"),
        ("3", "N-\\[P\\]"),
    ],
)
def test_malformed_macro_codes_are_refused(code, message):
    with pytest.raises(ValueError, match=message):
        MacroGenotype.parse(code)


def test_macro_mutation_changes_the_genotype():
    rng = np.random.default_rng(1)
    macro = MacroGenotype.parse("5-[1]")
    for _ in range(100):
        child = macro.mutate(rng, 0.05)
        assert child != macro
        macro = child


@pytest.mark.parametrize("operation", range(len(CNN_OPERATIONS)))
@pytest.mark.parametrize("nodes", [3, 4, 5, 6])
def test_every_operation_and_node_count_builds_and_keeps_shapes(operation, nodes):
    cell = CellGenotype(nodes, (operation,) * (nodes * (nodes - 1) // 2))
    net = SearchedNetwork(NetworkSpec(cell.code, "2-[0]", channels=8, num_classes=3))
    out = net(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 3) and torch.isfinite(out).all()


def test_equivalent_genotypes_build_identical_modules():
    a = SearchedNetwork(NetworkSpec("302-01-0", channels=4))
    b = SearchedNetwork(NetworkSpec("32-1", channels=4))
    assert [tuple(p.shape) for p in a.parameters()] == [tuple(p.shape) for p in b.parameters()]
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 8, 8)
    a.eval(), b.eval()
    torch.testing.assert_close(a(x), b(x))


def test_macro_pools_halve_resolution():
    net = SearchedNetwork(NetworkSpec("3501-110-44-1", "5-[1,3]", channels=8))
    assert net.body(net.stem(torch.randn(1, 3, 64, 64))).shape == (1, 8, 16, 16)
