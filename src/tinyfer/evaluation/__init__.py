"""Evaluation: metrics, calibration, figures, a model's evaluation on a dataset and the
reports of runs and experiments (scikit-learn, scipy, matplotlib; no torch)."""
