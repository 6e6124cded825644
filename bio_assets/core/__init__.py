"""Pure torch/numpy/Pillow code of bio-assets. Never imports dagster, resources or jobs."""
