"""dl: a deep-learning lab in NumPy alone, driven from YAML configs."""

__version__ = "0.1.0"
