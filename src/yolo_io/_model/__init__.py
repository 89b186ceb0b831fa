"""The model: a cfg (``config``, its typed records in ``attrs``), a network on
a weights file (``network``), what fusion shares (``fusion``) and the state
dicts under peers' names (``state_dict``). Imports only ``_base`` and the core."""
