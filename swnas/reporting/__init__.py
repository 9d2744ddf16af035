"""What a person reads of a search: its table and charts, the HTML page, comparisons and the ensemble."""
