"""The data core: labels, configs, images and videos, datasets, faces, prepared arrays,
splits, audits. numpy, OpenCV, Pillow and onnxruntime (for MTCNN); scikit-learn only where
splits need it, imported there: every other layer builds on it."""
