# MoCo v2 with the rest of the seed's runtime, on the tests' tiny CPU recipe (ResNet-18 of base width 8,
# a 64-key queue, batch 16, 2 epochs): after every epoch the 'val' phase of the workflow (EvalHook) gives
# the kNN top-1 (k=20) of the backbone on the held-out split, the best checkpoint is kept; an exponential
# moving average of the weights (EMAHook) is what is evaluated and saved; TensorBoard event files are
# written beside train.log.
_base_ = './mocov2_resnet18-w16_1xb64-coslr-10e_fmnist.py'
model = dict(
    queue_len=64,
    backbone=dict(base_channels=8, norm_cfg=dict(type='SplitBN', num_splits=2)),
    neck=dict(in_channels=64, hid_channels=64, out_channels=32),
    feat_dim=32)
data = dict(
    samples_per_gpu=16,
    val=dict(
        type='SingleViewDataset',
        data_source=dict(type='ParquetShards', root=None, split='test'),
        pipeline={{_base_.eval_pipeline}}))
workflow = [('train', 1), ('val', 1)]
evaluation = dict(interval=1, save_best='auto', k=20, temperature=0.07)
custom_hooks = [dict(type='EMAHook', momentum=0.01, warm_up=100)]
runner = dict(max_epochs=2)
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=10, hooks=[dict(type='TextLoggerHook'), dict(type='TensorboardLoggerHook')])
