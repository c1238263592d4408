"""Benchmarks on frozen backbones: feature extraction, kNN (and later SVM, linear, semi, ...)."""
