"""Layer-wise geometry of French BERT embeddings, pre-trained vs fine-tuned on FLUE-CLS."""
import gc
import os
import sys

# torch's OpenMP threads otherwise spin while waiting: on 2 shared cores that made tiny-encoder steps
# 5-25x slower whenever another process ran (measured), and cost nothing measurable when idle. It must be
# set before torch loads, and `python -m embstudy.<stage>` imports this package first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# transformers loads weights on a thread pool by default. A Ctrl-C (or dvc's SIGINT) while that pool starts
# its first thread leaves a worker that Python waits for at exit, so the stage hangs instead of ending (seen
# in CI: `dvc repro` still ran 300 s after SIGINT). Loading on the main thread costs about 0.3 s for the
# converted e5-small (3.6 s against 3.4, 470 MB, measured); tests/test_interrupt.py replays that moment.
os.environ.setdefault("HF_DEACTIVATE_ASYNC_LOAD", "1")

# A stage's start-up is mostly importing torch and transformers' model code: hundreds of thousands of
# objects, which the cyclic collector walks again and again while they load: 1.3-2.9 of the 3.9-8.0 CPU
# seconds each stage's imports took (measured, collector on and off). So a stage run as dvc.yaml runs it
# (`python -m embstudy.<stage>`) and a worker it spawns import with the collector off; stage.start and the
# worker's set-up turn it back on (:func:`imports_done`).
STAGES = ("synth", "prepare", "pretrain", "tokenize", "control", "finetune", "extract", "probe", "summary")
_STAGE_RUN = tuple(sys.orig_argv[1:3]) in {("-m", f"embstudy.{s}") for s in STAGES}
if _STAGE_RUN or "--multiprocessing-fork" in sys.orig_argv:
    gc.disable()


def imports_done() -> None:
    """Turn the collector back on, leaving the objects made so far (the imports', hardly any garbage: ~4 % of
    the memory) out of its rounds for good (``gc.freeze``), so later full collections skip them too."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
