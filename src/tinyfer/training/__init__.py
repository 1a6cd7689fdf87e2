"""Training: the data module, the two phases' LightningModules, and the runner of both phases."""
