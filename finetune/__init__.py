"""Fine-tuning: text classifiers whose labels become search filters."""
