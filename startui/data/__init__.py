"""Data bundled with startui: the sample problems (see make_sample_problems.py)."""
