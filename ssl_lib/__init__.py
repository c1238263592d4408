"""ssl_lib: self-supervised pretraining and benchmarks, one stage per module in ssl_lib.stages."""
__version__ = "0.1.0"
