"""Network building blocks shared by the families."""
