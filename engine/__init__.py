"""Reverie's engine: DeepDream and style transfer in plain PyTorch (no ComfyUI imports)."""
