# Rotation Prediction sized for two CPU cores (the default of `make run`): a quarter-width ResNet-18
# (base 16) with the small-image stem, on 10k Fashion-MNIST images x 4 rotations for 3 epochs.
# Measured (kNN top-1 at k=10/20/100/200 on the full 28 px images; random init of the same backbone: 76.65 at k=20):
#   - 3 epochs, lr 0.1 (the seed's 0.2 is for 8 x 16 x 4 = 512 images a step, here 64 x 4 = 256), lr / 10
#     for the last epoch: 82.90 / 81.80 / 79.40 / 77.10, 4.7 minutes of pretraining.
#   - plain BN rather than the seed's SyncBN: one process; each batch holds all four rotations of each image.
_base_ = [
    '../_base_/models/rotation-pred.py',
    '../_base_/datasets/fmnist_rotation-pred.py',
    '../_base_/schedules/sgd_steplr-200e_in1k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(depth=18, base_channels=16, stem='cifar', norm_cfg=dict(type='BN')),
    head=dict(in_channels=128))
data = dict(samples_per_gpu=64)
optimizer = dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4)
lr_config = dict(policy='step', step=[2])
runner = dict(max_epochs=3)
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=50)
