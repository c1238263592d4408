_base_ = [
    '../_base_/models/npid.py',
    '../_base_/datasets/imagenet_npid.py',
    '../_base_/schedules/sgd_steplr-200e_in1k.py',
    '../_base_/default_runtime.py',
]

# keep only the three newest checkpoints
checkpoint_config = dict(interval=10, max_keep_ckpts=3)
