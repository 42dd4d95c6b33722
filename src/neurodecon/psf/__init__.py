"""Point spread functions: theoretical models, validation/resampling, and extraction from beads."""

__all__: list[str] = []
