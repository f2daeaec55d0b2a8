"""``python -m hiddenpop.cli``: the same entry point as the ``hiddenpop`` console script."""

from hiddenpop.cli.root import main

main()
