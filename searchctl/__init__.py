"""searchctl: the command-line shell over searchcore, indexer, finetune and searchd.

It owns parsing, rendering and exit codes; each command makes one library call. It is
the only package that may import all the others.
"""
