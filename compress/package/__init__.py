"""The package stage: the run's chosen model as final/ (HF, ONNX and bundle folders) with model cards."""
