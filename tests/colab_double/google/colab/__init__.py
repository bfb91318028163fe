"""Test double of Colab's ``google.colab`` package: importable means "this is a Colab runtime"."""
