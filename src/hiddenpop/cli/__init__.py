"""The command line: ``hiddenpop <family> <verb> INPUTS [options]``, one module per family.

The commands only parse options (built from each analysis's spec), read inputs, call the family and print the
result; :mod:`hiddenpop.cli.root` assembles them and turns user-fixable errors into one line with exit code 2.
"""

from hiddenpop.memory import prefer_base_pages

prefer_base_pages()  # before anything loads NumPy (see hiddenpop.memory)

from hiddenpop.cli.root import app, main  # noqa: E402

__all__ = ["app", "main"]
