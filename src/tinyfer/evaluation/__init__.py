"""Evaluation: metrics, figures, experiments and reports."""
