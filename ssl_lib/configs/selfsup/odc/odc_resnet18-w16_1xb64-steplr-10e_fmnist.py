# ODC sized for two CPU cores: a quarter-width ResNet-18 (base 16) with the small-image stem, on 10k
# Fashion-MNIST images, 300 clusters kept online in the memory.
_base_ = [
    '../_base_/models/odc.py',
    '../_base_/datasets/fmnist_deepcluster.py',
    '../_base_/schedules/sgd_steplr-200e_in1k.py',
    '../_base_/default_runtime.py',
]
num_classes = 300
model = dict(
    backbone=dict(depth=18, base_channels=16, stem='cifar', norm_cfg=dict(type='BN')),
    neck=dict(in_channels=128, hid_channels=128, out_channels=64, norm_cfg=dict(type='BN')),
    head=dict(in_channels=64, num_classes=num_classes),
    memory_bank=dict(length=10000, feat_dim=64, num_classes=num_classes, min_cluster=5))
optimizer = dict(
    type='SGD', lr=0.06, momentum=0.9, weight_decay=1e-5, paramwise_options={'\\Ahead.': dict(momentum=0.)})
lr_config = dict(policy='step', step=[400], gamma=0.4)
runner = dict(max_epochs=10)
custom_hooks = [
    dict(
        type='DeepClusterHook',
        extractor=dict(samples_per_gpu=256, workers_per_gpu=0, pipeline={{_base_.extract_pipeline}}),
        clustering=dict(type='Kmeans', k=num_classes, pca_dim=-1),
        unif_sampling=False,
        reweight=True,
        reweight_pow=0.5,
        init_memory=True,
        initial=True,
        interval=9999999999),
    dict(
        type='ODCHook',
        centroids_update_interval=10,
        deal_with_small_clusters_interval=1,
        evaluate_interval=50,
        reweight=True,
        reweight_pow=0.5)
]
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=50)
