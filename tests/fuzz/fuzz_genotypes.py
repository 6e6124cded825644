"""Fuzz target: the genotype parsers (CNN cell and network codes, NAS-Bench-201 strings, GAN
generator and discriminator codes). Any text is either parsed into a genotype whose canonical
code parses back to the same genotype, or refused with ``ValueError``; anything else is a bug."""

from __future__ import annotations

import sys

from tests.fuzz.harness import instrumented, main

with instrumented(__name__ == "__main__"):
    from bio_assets.core.cnn.genotypes import CellGenotype, MacroGenotype
    from bio_assets.core.gan.genotypes import GanGenotype

PARSERS = (
    (CellGenotype.parse, lambda g: g.code),
    (CellGenotype.from_nb201, lambda g: g.to_nb201()),
    (MacroGenotype.parse, lambda g: g.code),
    (lambda text: GanGenotype.parse(text, "generator"), lambda g: g.code),
    (lambda text: GanGenotype.parse(text, "discriminator"), lambda g: g.code),
)


def seeds() -> list[bytes]:
    """A valid code for every parser (the first byte picks the parser)."""
    texts = (
        "3501-110-44-1",
        "|conv_3x3~0|+|skip_connect~0|none~1|",
        "5-[1, 3]",
        "{3, 42-1, [3]}",
        "{3, 63-1, [1, 2]}",
    )
    return [bytes([index]) + text.encode() for index, text in enumerate(texts)]


def one_input(data: bytes) -> None:
    if not data:
        return
    parse, canonical = PARSERS[data[0] % len(PARSERS)]
    text = data[1:].decode("utf-8", errors="surrogateescape")
    try:
        genotype = parse(text)
    except ValueError:
        return
    again = parse(canonical(genotype))
    if again != genotype:
        raise AssertionError(f"{text!r} parsed to {genotype}, whose code {canonical(genotype)!r} parses to {again}")


if __name__ == "__main__":
    sys.exit(main("fuzz_genotypes", one_input, seeds()))
