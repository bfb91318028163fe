"""Stage 4, the pictures (notebooks 01-04): data with ground truth, predictions, curves; inline and saved as PNG."""
