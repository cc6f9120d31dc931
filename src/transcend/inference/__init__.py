"""The inference core: a model file run step by step, and the move it chooses in a position.

``contract`` (what an exported file holds), ``runtime`` (onnxruntime), ``torch_backend`` (the same steps on
PyTorch), ``policy`` (exact move probabilities over a KV cache), ``history`` (a move history for a FEN),
``choice`` (the move to play under a temperature schedule). Nothing here knows about UCI; the engine
(``transcend.uci``), ``transcend policy``, export's verification and tournaments all build on it.

Kept empty of imports: ``transcend-uci`` imports ``contract`` before its answer to ``uci`` goes out.
"""
