"""The bottom layer: errors, path arguments, the progress bar and the version.
It imports nothing of yolo_io but the core (docs/architecture.md lists the layers)."""
