"""Export: the ONNX graph (``onnx``) and its check against OpenCV's darknet
importer and onnxruntime (``verify``)."""
