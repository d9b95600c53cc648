"""Layer-wise geometry of French BERT embeddings, pre-trained vs fine-tuned on FLUE-CLS."""
import os

# torch's OpenMP threads otherwise spin while waiting: on 2 shared cores that made tiny-encoder steps
# 5-25x slower whenever another process ran (measured), and cost nothing measurable when idle. It must be
# set before torch loads, and `python -m embstudy.<stage>` imports this package first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# transformers loads weights on a thread pool by default. A Ctrl-C (or dvc's SIGINT) while that pool starts
# its first thread leaves a worker that Python waits for at exit, so the stage hangs instead of ending (seen
# in CI: `dvc repro` still ran 300 s after SIGINT). Loading on the main thread costs about 0.3 s for the
# converted e5-small (3.6 s against 3.4, 470 MB, measured); tests/test_interrupt.py replays that moment.
os.environ.setdefault("HF_DEACTIVATE_ASYNC_LOAD", "1")
