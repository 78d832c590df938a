"""Simulators: smart meters, the aggregation system (AS), market participants, and whole DR and market runs."""
