"""Reading and analysing TFLite (LiteRT) flatbuffers without running them."""

from .reader import OpCode, Operator, Quantization, Signature, Subgraph, Tensor, TFLiteModel, parse

__all__ = ["OpCode", "Operator", "Quantization", "Signature", "Subgraph", "TFLiteModel", "Tensor", "parse"]
