"""A local Hugging Face causal language model as a `ChatClient` for the LLM planner.

Lives in `experiments/` because only the composition root may import `transformers` directly besides
`perception`; the planner only sees the `ChatClient` protocol.
"""

from __future__ import annotations

from pathlib import Path

from agent.planner.llm import ChatError


class HFChatClient:
    """Greedy generation with a local causal LM directory (``config.json`` + weights + tokenizer).

    Args:
        model_dir: The model directory; loaded with ``local_files_only=True``, never from a hub.
        max_new_tokens: Generation budget per answer.
    """

    def __init__(self, model_dir: str | Path, max_new_tokens: int = 384) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(model_dir)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"not a Hugging Face model directory (no config.json): {path}")
        self.path = path
        self.max_new_tokens = max_new_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True).eval()

    @property
    def name(self) -> str:
        """What the planner reports as its back end: the model directory the LM was loaded from."""
        return f"local causal LM {self.path}"

    def _prompt(self, messages: list[dict[str, str]]) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return str(self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
        lines = [f"{m['role']}: {m['content']}" for m in messages]
        return "\n\n".join([*lines, "assistant:"])

    def complete(self, messages: list[dict[str, str]]) -> str:
        """Greedy reply of the local model to a chat, decoded without the prompt.

        Raises ChatError when generation fails, so the planner treats it like a failed remote call.
        """
        import torch

        inputs = self.tokenizer(self._prompt(messages), return_tensors="pt")
        try:
            with torch.inference_mode():
                output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                             pad_token_id=self.tokenizer.pad_token_id or 0)
        except (RuntimeError, ValueError) as error:
            raise ChatError(f"generation failed with {self.path}: {error}") from error
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        return str(self.tokenizer.decode(new_tokens, skip_special_tokens=True))
