# DeepCluster sized for two CPU cores: a quarter-width ResNet-18 (base 16) with the small-image stem,
# on 10k Fashion-MNIST images, k-means into 300 clusters before every epoch.
_base_ = [
    '../_base_/models/deepcluster.py',
    '../_base_/datasets/fmnist_deepcluster.py',
    '../_base_/schedules/sgd_steplr-200e_in1k.py',
    '../_base_/default_runtime.py',
]
num_classes = 300
model = dict(
    with_sobel=False,  # grey images: no colour for the clustering to latch on to
    backbone=dict(depth=18, base_channels=16, stem='cifar', in_channels=3),
    head=dict(in_channels=128, num_classes=num_classes))
optimizer = dict(
    type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-5, paramwise_options={'\\Ahead.': dict(momentum=0.)})
lr_config = dict(policy='step', step=[400])
runner = dict(max_epochs=10)
custom_hooks = [
    dict(
        type='DeepClusterHook',
        extractor=dict(samples_per_gpu=256, workers_per_gpu=0, pipeline={{_base_.extract_pipeline}}),
        clustering=dict(type='Kmeans', k=num_classes, pca_dim=64),
        unif_sampling=True,
        reweight=False,
        reweight_pow=0.5,
        initial=True,
        interval=1)
]
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=50)
