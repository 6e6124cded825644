"""CNN search spaces: cell and macro genotypes, operations, networks, training."""
