# A tiny ODC for tests: base width 8, 4 clusters in a 64-sample memory, batch 16, two epochs.
_base_ = '../../ssl_lib/configs/selfsup/odc/odc_resnet18-w16_1xb64-steplr-10e_fmnist.py'
model = dict(
    backbone=dict(base_channels=8),
    neck=dict(in_channels=64, hid_channels=32, out_channels=16),
    head=dict(in_channels=16, num_classes=4),
    memory_bank=dict(length=64, feat_dim=16, num_classes=4, min_cluster=4))
data = dict(samples_per_gpu=16)
runner = dict(max_epochs=2)
custom_hooks = [
    dict(
        type='DeepClusterHook',
        extractor=dict(samples_per_gpu=32, pipeline={{_base_.extract_pipeline}}),
        clustering=dict(type='Kmeans', k=4, pca_dim=-1),
        unif_sampling=False,
        reweight=True,
        reweight_pow=0.5,
        init_memory=True,
        interval=9999999999),
    dict(
        type='ODCHook',
        centroids_update_interval=2,
        deal_with_small_clusters_interval=1,
        evaluate_interval=2,
        reweight=True,
        reweight_pow=0.5)
]
checkpoint_config = dict(interval=1, max_keep_ckpts=0)
log_config = dict(interval=1)
