"""Quantization of exported ONNX models (ONNX Runtime, NNCF) with an accuracy guard."""
