"""charlm: character-level recurrent language models in numpy."""

__version__ = "0.1.0"
