"""Overhead benchmarks of vm-system, and comparisons with other engines.

Run as modules, e.g. `python -m benchmarks.sandbox_bench --quick`.
"""
