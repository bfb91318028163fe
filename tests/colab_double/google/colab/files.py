"""Test double of ``google.colab.files``: ``download`` starts no browser download; it records the file.

Colab's own raises ``FileNotFoundError`` for a path that is not a file, then asks the browser to save it.
"""

import os

downloaded: list[str] = []


def download(filename):
    if not os.path.isfile(filename):
        raise FileNotFoundError(f"Cannot find file: {filename}")
    downloaded.append(os.path.abspath(filename))
