"""Stage 1, the dataset (notebook 01): which data, its check, the split and record, registration, statistics."""
