"""Stage 4, the submission (notebook 04): the export from cached predictions, and the submission check."""
