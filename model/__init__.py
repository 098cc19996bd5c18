"""The GPT model: architecture, presets, sampling, and safetensors / Hugging Face export."""
from model.gpt import GPT, PRESETS, GPTConfig, load_safetensors, save_safetensors

__all__ = ["GPT", "GPTConfig", "PRESETS", "load_safetensors", "save_safetensors"]
