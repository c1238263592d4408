# A tiny DeepCluster for tests: base width 8, 8 clusters, batch 16, two epochs.
_base_ = '../../ssl_lib/configs/selfsup/deepcluster/deepcluster_resnet18-w16_1xb64-steplr-10e_fmnist.py'
model = dict(
    backbone=dict(base_channels=8),
    head=dict(in_channels=64, num_classes=8))
data = dict(samples_per_gpu=16)
runner = dict(max_epochs=2)
custom_hooks = [
    dict(
        type='DeepClusterHook',
        extractor=dict(samples_per_gpu=32, pipeline={{_base_.extract_pipeline}}),
        clustering=dict(type='Kmeans', k=8, pca_dim=16),
        unif_sampling=True,
        reweight=False,
        reweight_pow=0.5)
]
checkpoint_config = dict(interval=1, max_keep_ckpts=0)
log_config = dict(interval=1)
