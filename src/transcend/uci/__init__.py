"""The UCI front end: ``transcend-uci``, a UCI engine on the inference core (``transcend.inference``).

``main`` (the light entry point), ``protocol`` (line I/O and the handshake), ``options`` (every option
with its flag and its effect), ``timeman`` (``go`` and the time a move may take), ``loader`` (models
loaded in the background), ``scores`` (the score shown for a move), ``engine`` (the commands and the
searches). Kept empty of imports: the entry point must stay light.
"""
