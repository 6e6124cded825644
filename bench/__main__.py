"""``python -m bench``: run every benchmark in order."""

from bench import bench_ingest

if __name__ == "__main__":
    bench_ingest.main()
