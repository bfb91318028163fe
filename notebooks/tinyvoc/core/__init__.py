"""The shared ground beneath every stage: where files live, atomic writes, the one error type, COCO json
reading and its wording, RLE masks, and the image reader the dataset check and prediction share.

Nothing here imports a stage; every stage may import from here.
"""
