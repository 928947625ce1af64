"""Pretrained weights: reading published checkpoint files and mapping them onto vidjax models."""
