"""Frameworks: pairing darknet's units with a framework model's (``pairing``,
framework-neutral) and the PyTorch and Keras adapters (``torch``, ``keras``;
each imports its framework only when called)."""
