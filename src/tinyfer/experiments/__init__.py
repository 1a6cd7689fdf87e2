"""Experiments: a grid of variants trained on subject-grouped folds, where the trainings run
(here, local processes, Ray), their statistics and reports."""
