"""The run's data: sources read into columns, rows, splits, and the data artifact every stage reads."""
