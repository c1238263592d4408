checkpoint_config = dict(interval=10)
log_config = dict(interval=50)
custom_hooks = []
seed = 0
resume_from = None
