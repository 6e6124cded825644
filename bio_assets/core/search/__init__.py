"""Architecture search: aging evolution and random search over any genotype."""
