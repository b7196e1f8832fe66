"""Saved models on disk: the folder layout and version allocation, saving, finding and
loading a model for prediction."""
