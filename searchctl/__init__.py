"""searchctl: the command-line shell over searchcore and indexer."""
