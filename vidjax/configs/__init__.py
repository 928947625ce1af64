"""Experiment configs, one file per experiment; default.py declares every key.

They live inside the package so an installed vidjax finds them; the
checkout's top-level `configs` is a link here, so `--config configs/NAME.py`
works both ways (vidjax/config.py `load_config_file`).
"""
