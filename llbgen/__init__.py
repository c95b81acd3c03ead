"""llbgen: PyTorch GPU-cloud images from Python stage objects, built as BuildKit LLB over gRPC."""

__version__ = "0.1.0"
