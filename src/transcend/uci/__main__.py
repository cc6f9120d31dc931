"""``python -m transcend.uci``: the same as ``transcend-uci``."""

from .main import main

main()
