"""Stage 3, inference (notebooks 03 and 04): one trained run loaded once, predictions and their cache, evaluation."""
