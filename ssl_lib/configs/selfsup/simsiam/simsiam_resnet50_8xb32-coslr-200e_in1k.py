_base_ = [
    '../_base_/models/simsiam.py',
    '../_base_/datasets/imagenet_mocov2.py',
    '../_base_/schedules/sgd_coslr-200e_in1k.py',
    '../_base_/default_runtime.py',
]

# set base learning rate
lr = 0.05

# the predictor learns at the fixed base lr; priority HIGH: after the LR updater (VERY_HIGH)
custom_hooks = [
    dict(type='SimSiamHook', priority='HIGH', fix_pred_lr=True, lr=lr)
]

optimizer = dict(lr=lr, paramwise_options={'predictor': dict(fix_lr=True)})

# keep only the three newest checkpoints
checkpoint_config = dict(interval=10, max_keep_ckpts=3)
