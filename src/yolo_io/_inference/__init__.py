"""Running a network on images: darknet's preprocessing, the backends, its
thresholding and NMS (:func:`yolo_io.detect`), and drawing the boxes."""
