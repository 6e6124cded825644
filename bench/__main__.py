"""``python -m bench``: run every benchmark in order."""

from bench import bench_gan, bench_ingest, bench_search, bench_synthesis, bench_training

if __name__ == "__main__":
    bench_ingest.main([])
    bench_training.main()
    bench_search.main()
    bench_gan.main()
    bench_synthesis.main()
