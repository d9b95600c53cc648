"""The bench wing: measurements of the pipeline's code, outside the pipeline (nothing in dvc.yaml uses them).

- :mod:`embstudy.bench.timing`: ``make bench``, extract against the seed's method, the forward-pass floor,
  padding, memory and the pipeline's wall times (``python -m embstudy.bench``);
- :mod:`embstudy.bench.report`: its machine facts, pipeline timings and markdown (``bench/results.md``);
- :mod:`embstudy.bench.seed_method`: the seed study's per-layer geometry computed its way, the baseline;
- :mod:`embstudy.bench.robustness`: ``make robustness``, the demo's fine-tuning under other float kernels and
  thread counts (``python -m embstudy.bench.robustness``).
"""
