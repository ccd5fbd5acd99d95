"""Operator-defined rules that reshape a stored Segment call before it is mapped (pure functions, see rules.py)."""
