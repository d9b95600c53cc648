"""Layer-wise geometry of French BERT embeddings, pre-trained vs fine-tuned on FLUE-CLS."""
import os

# torch's OpenMP threads otherwise spin while waiting: on 2 shared cores that made tiny-encoder steps
# 5-25x slower whenever another process ran (measured), and cost nothing measurable when idle. It must be
# set before torch loads, and `python -m embstudy.<stage>` imports this package first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
