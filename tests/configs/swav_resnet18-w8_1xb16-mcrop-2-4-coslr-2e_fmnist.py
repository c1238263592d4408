# A tiny SwAV for tests: base width 8, 16 prototypes, batch 16, two epochs; the queue (32 embeddings, two
# batches) starts at epoch 1 and prototypes are frozen for the first 2 iterations.
_base_ = '../../ssl_lib/configs/selfsup/swav/swav_resnet18-w16_1xb64-mcrop-2-4-coslr-10e_fmnist.py'
model = dict(
    backbone=dict(base_channels=8),
    neck=dict(in_channels=64, hid_channels=32, out_channels=16),
    head=dict(feat_dim=16, num_prototypes=16))
data = dict(samples_per_gpu=16)
custom_hooks = [
    dict(type='SwAVHook', priority='VERY_HIGH', batch_size=16, epoch_queue_starts=1, crops_for_assign=[0, 1],
         feat_dim=16, queue_length=32)
]
optimizer_config = dict(frozen_layers_cfg={'head.prototypes': 2})
runner = dict(max_epochs=2)
checkpoint_config = dict(interval=1, max_keep_ckpts=0)
log_config = dict(interval=1)
