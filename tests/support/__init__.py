"""Helpers the test groups share: servers run as processes, kernel images, console matching, printk ring images.
Importable as `support.<module>` because pytest puts tests/ on sys.path (pyproject.toml's pythonpath)."""
