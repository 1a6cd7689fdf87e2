"""Inference on onnxruntime, without torch: the ONNX classifier, the Recognizer, batch
prediction, annotation, the HTTP service, speed on this machine."""
