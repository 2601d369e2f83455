"""The Composer strategy language: text in, allocation and trace out. Pure: no I/O."""
