"""KFP components: one per stage, each a thin interface over `ssl_lib.stages.<name>`."""
