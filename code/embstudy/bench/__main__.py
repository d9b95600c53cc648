"""``python -m embstudy.bench``: the benchmark (:func:`embstudy.bench.timing.main`)."""
from embstudy.bench.timing import main

if __name__ == "__main__":
    main()
