"""The data core: labels, configs, images and videos, datasets, faces, prepared arrays,
splits, audits. numpy, OpenCV and Pillow only: every other layer builds on it."""
