"""Writing files: the one atomic writer and the checks before it (``atomic``),
``.weights`` and ``.npz`` (``weights``), fused models (``fused``) and
safetensors (``safetensors``). Imports only ``_model``, ``_base`` and the core."""
