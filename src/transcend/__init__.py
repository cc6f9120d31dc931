"""transcend: chess transcripts, a character-level GPT, ONNX export and a UCI engine (arXiv 2406.11741)."""

__version__ = "0.1.0"
