_base_ = [
    '../_base_/models/odc.py',
    '../_base_/datasets/imagenet_odc.py',
    '../_base_/schedules/sgd_steplr-200e_in1k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    head=dict(num_classes={{_base_.num_classes}}),
    memory_bank=dict(num_classes={{_base_.num_classes}}))
optimizer = dict(
    type='SGD', lr=0.06, momentum=0.9, weight_decay=1e-5, paramwise_options={'\\Ahead.': dict(momentum=0.)})
lr_config = dict(policy='step', step=[400], gamma=0.4)
runner = dict(type='EpochBasedRunner', max_epochs=440)
checkpoint_config = dict(interval=10, max_keep_ckpts=3)
# One k-means before training fills the memory; ODCHook keeps it up.
custom_hooks = [
    dict(
        type='DeepClusterHook',
        extractor=dict(samples_per_gpu=128, workers_per_gpu=8, pipeline={{_base_.extract_pipeline}}),
        clustering=dict(type='Kmeans', k={{_base_.num_classes}}, pca_dim=-1),  # no PCA
        unif_sampling=False,
        reweight=True,
        reweight_pow=0.5,
        init_memory=True,
        initial=True,  # cluster before the first epoch
        interval=9999999999),  # and never again
    dict(
        type='ODCHook',
        centroids_update_interval=10,  # iterations
        deal_with_small_clusters_interval=1,
        evaluate_interval=50,
        reweight=True,
        reweight_pow=0.5)
]
