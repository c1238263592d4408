"""Pipeline stages: one module per stage, each a function, a CLI and a KFP component body."""
