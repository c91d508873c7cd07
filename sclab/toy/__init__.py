"""The toy world: synthetic tasks with exact graders and tiny transformers trained on them.

    >>> from sclab.toy import TOY_MODELS
    >>> sorted(TOY_MODELS)[:1]
    ['arith']
"""
from sclab.toy.registry import TOY_MODELS, ToySpec, ToyWorld, toy_world

__all__ = ["TOY_MODELS", "ToySpec", "ToyWorld", "toy_world"]
