"""Stage 0, the runtime: Colab and Drive, the project folder, detectron2's install, the data on this disk.

``project.start`` is what every notebook's start cell (the one after the install cell) calls.
"""
