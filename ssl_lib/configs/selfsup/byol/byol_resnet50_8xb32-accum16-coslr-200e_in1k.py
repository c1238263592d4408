_base_ = [
    '../_base_/models/byol.py',
    '../_base_/datasets/imagenet_byol.py',
    '../_base_/schedules/lars_coslr-200e_in1k.py',
    '../_base_/default_runtime.py',
]

# interval for accumulate gradient, total 8*32*16(interval)=4096
update_interval = 16
custom_hooks = [
    dict(type='MomentumUpdateHook', end_momentum=1., update_interval=update_interval)
]

optimizer = dict(
    type='LARS',
    lr=4.8,
    momentum=0.9,
    weight_decay=1e-6,
    paramwise_options={
        '(bn|gn)([0-9]+)?.(weight|bias)': dict(weight_decay=0., lars_exclude=True),
        'bias': dict(weight_decay=0., lars_exclude=True)
    })
optimizer_config = dict(update_interval=update_interval)

# keep only the three newest checkpoints
checkpoint_config = dict(interval=10, max_keep_ckpts=3)
