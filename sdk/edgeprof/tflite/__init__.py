"""Reading and analysing TFLite (LiteRT) flatbuffers without running them."""

from .reader import OpCode, Operator, Quantization, Subgraph, Tensor, TFLiteModel, parse

__all__ = ["OpCode", "Operator", "Quantization", "Subgraph", "TFLiteModel", "Tensor", "parse"]
