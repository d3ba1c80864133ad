"""Training: data pipeline, rate-distortion loss, resumable trainer."""
