"""LightFM: training, the model artifact, and scoring with a loaded model."""
