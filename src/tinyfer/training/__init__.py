"""Training, on torch, Lightning and kornia: the model zoo, augmentation, the data module,
the two phases and their run folders, torch model files and ONNX export."""
