"""The spiders: ``site`` (follow links inside domains) and ``search`` (query sources)."""
