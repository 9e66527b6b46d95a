"""`vm-system bench`: what running JavaScript isolated costs, layer by layer, against the other
ways to run it. One scenario per module in `benchmarks/scenarios/`, the engines compared in
`benchmarks/engines/`, one timing implementation (`benchmarks/timing.py`).

Run it as `vm-system bench [--scenario NAME ...] [--quick] [--json FILE] [--plot FILE.png]`
(or `python -m benchmarks ...`, which hands over to it)."""
