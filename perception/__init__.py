"""Perception: camera RGB-D, fingertip touch, proprioception and language into embeddings."""

from perception.extractor import MultiModalExtractor, build_encoders, policy_kwargs
from perception.goal_wrapper import GoalEmbeddingWrapper
from perception.layout import ModalityLayout, read_layout
from perception.text import HashingTextEncoder, MiniLMEncoder, TextEncoder, default_text_encoder

__all__ = [
    "GoalEmbeddingWrapper",
    "HashingTextEncoder",
    "MiniLMEncoder",
    "ModalityLayout",
    "MultiModalExtractor",
    "TextEncoder",
    "build_encoders",
    "default_text_encoder",
    "policy_kwargs",
    "read_layout",
]
