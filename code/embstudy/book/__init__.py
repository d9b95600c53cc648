"""The book wing: everything that turns the pipeline's outputs into the Quarto book, and nothing the pipeline
itself needs.

- :mod:`embstudy.book.data`: readers of the pipeline's outputs (tidy frames that remember their files);
- :mod:`embstudy.book.provenance`: the files, hashes, parameters, software and machine behind the numbers;
- :mod:`embstudy.book.fmt`: how numbers, intervals and tables are written;
- :mod:`embstudy.book.prose`: the sentences whose numbers are read, not typed;
- :mod:`embstudy.book.charts`: the Altair charts;
- :mod:`embstudy.book.render`: the offline renderer that shows them (``render.setup()``);
- :mod:`embstudy.book.preview`: the build, ``quarto render`` or the offline preview.

Chapters import what they use, e.g. ``from embstudy.book import charts, data, provenance, render``.
Run: ``python -m embstudy.book`` (``--preview`` builds the preview even where Quarto exists).
"""
