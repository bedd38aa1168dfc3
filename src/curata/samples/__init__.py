"""Sample data shipped with curata: synthetic support tickets for "Lumen Notes".

Read the files with ``importlib.resources.files("curata.samples")``; see README.md beside them.
"""
