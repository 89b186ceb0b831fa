"""Diagnosis: why a weights file does not fit its cfg and the lines to change
(``diagnose``, with the sizes of published models in ``published``), and the
health of its values (``doctor``). Imports only the layers below it."""
