"""Simulation with known truth: synthetic surveys, report streams and countries for tests, demos and planning.

Import generators from their modules (``hiddenpop.simulate.ard``, ``.reports``, ``.country``, ``.grid``).
"""
