"""Machine-learning helpers. Nothing here imports torch at module level: each helper imports
it inside the functions that need it, so the classic stages stay usable without torch."""
