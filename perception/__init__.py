"""Perception: camera RGB-D, fingertip touch, proprioception and language into embeddings."""

from perception.text import HashingTextEncoder, MiniLMEncoder, TextEncoder, default_text_encoder

__all__ = ["HashingTextEncoder", "MiniLMEncoder", "TextEncoder", "default_text_encoder"]
