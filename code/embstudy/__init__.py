"""Layer-wise geometry of French BERT embeddings, pre-trained vs fine-tuned on FLUE-CLS."""
