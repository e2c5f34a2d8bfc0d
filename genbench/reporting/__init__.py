"""Tables, plots and W&B read-back."""
