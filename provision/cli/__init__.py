"""The command line: thin Click commands over the core. Nothing below imports Click."""
