"""Experiments around the search: one architecture trained from scratch and the criterion-vs-chance study."""
