"""Stage 2, training (notebook 02): profiles, the frozen config, the time budget, the detectron2 trainer, the run.

``train.train`` sets up, runs and records; ``engine`` holds the detectron2 classes it runs.
"""
