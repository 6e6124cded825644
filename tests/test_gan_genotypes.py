"""GAN genotypes: the published codes round-trip, validation names what is wrong, keys merge equivalents."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bio_assets.core.gan.genotypes import FIXED_DISCRIMINATOR, GanGenotype


@pytest.mark.parametrize(
    ("code", "role", "nodes", "ops", "attention"),
    [
        ("{3, 12-6, [1, 2]}", "generator", 3, (1, 2, 6), (1, 2)),
        (FIXED_DISCRIMINATOR, "discriminator", 4, (2, 3, 5, 6, 6, 7), (4,)),
        ("{5, 1234-561-23-4, []}", "discriminator", 5, (1, 2, 3, 4, 5, 6, 1, 2, 3, 4), ()),
    ],
)
def test_published_codes_round_trip(code, role, nodes, ops, attention):
    genotype = GanGenotype.parse(code, role)
    assert (genotype.nodes, genotype.ops, genotype.attention) == (nodes, ops, attention)
    assert genotype.code == code and str(genotype) == code
    assert GanGenotype.parse(genotype.code, role) == genotype


def test_fixed_discriminator_reads_as_the_method_describes():
    edges = GanGenotype.parse(FIXED_DISCRIMINATOR, "discriminator").edges()
    assert edges == {
        (0, 1): "conv_3x3",
        (0, 2): "conv_5x5",
        (0, 3): "zero",
        (1, 2): "skip",
        (1, 3): "skip",
        (2, 3): "max_pool_3x3",
    }


def test_parse_tolerates_spacing_and_prints_canonically():
    assert GanGenotype.parse("{ 3,12-6,[ 1,2 ] }", "generator").code == "{3, 12-6, [1, 2]}"


@pytest.mark.parametrize(
    ("code", "role", "message"),
    [
        ("{3, 17-6, []}", "generator", "generator operation digits must be 1..6"),
        ("{3, 19-6, []}", "discriminator", "must be 1..8"),
        ("{4, 12-6, []}", "generator", "N is 4 but the cell code has 3 nodes"),
        ("{3, 12-6, [5]}", "generator", "cell indices in 1..4"),
        ("{3, 12-6, [2, 1]}", "generator", "distinct, sorted"),
        ("{6, 12345-1234-123-12-1, []}", "discriminator", "3..5 nodes"),
        ("3, 12-6, []", "generator", "must look like"),
        ("{3, 12-66, []}", "generator", "groups of [2, 1] digits"),
    ],
)
def test_invalid_codes_say_what_is_wrong(code, role, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        GanGenotype.parse(code, role)


def test_unknown_role_is_rejected():
    with pytest.raises(ValueError, match="role must be one of"):
        GanGenotype("critic", 3, (1, 2, 6))


def test_genotypes_are_immutable():
    genotype = GanGenotype.parse("{3, 12-6, [1, 2]}", "generator")
    with pytest.raises(dataclasses.FrozenInstanceError):
        genotype.nodes = 4  # type: ignore[misc]


def test_key_merges_cells_that_differ_only_off_the_input_output_paths():
    # 0->1 is dead when node 1 reaches the output only through a zero edge.
    a = GanGenotype.parse("{3, 26-5, []}", "generator")
    b = GanGenotype.parse("{3, 36-5, []}", "generator")
    assert a.key == b.key == "{3, 56-5, []}"
    assert GanGenotype.parse("{3, 25-5, [1]}", "generator").key == "{dead, [1]}"  # the output sees nothing
    assert a.key != GanGenotype.parse("{3, 26-5, [1]}", "generator").key  # attention changes the network


def test_random_and_mutated_genotypes_are_valid_and_mutation_changes_the_key():
    rng = np.random.default_rng(0)
    for role in ("generator", "discriminator"):
        for _ in range(50):
            genotype = GanGenotype.random(rng, role)
            child = genotype.mutate(rng, 0.2)
            assert child.role == role and child.key != genotype.key
            assert GanGenotype.parse(child.code, role) == child
    generator_digits = {d for _ in range(200) for d in GanGenotype.random(rng, "generator").ops}
    assert generator_digits == {1, 2, 3, 4, 5, 6}
