"""vidjax: video understanding in JAX/Flax."""
