_base_ = [
    '../_base_/models/deepcluster.py',
    '../_base_/datasets/imagenet_deepcluster.py',
    '../_base_/schedules/sgd_steplr-200e_in1k.py',
    '../_base_/default_runtime.py',
]
model = dict(head=dict(num_classes={{_base_.num_classes}}))
# the classifier is re-drawn after every clustering: no momentum for it
optimizer = dict(
    type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-5, paramwise_options={'\\Ahead.': dict(momentum=0.)})
lr_config = dict(policy='step', step=[400])
runner = dict(type='EpochBasedRunner', max_epochs=200)
checkpoint_config = dict(interval=10, max_keep_ckpts=3)
# The backbone sees Sobel-filtered images; evaluated alone (kNN, linear), it needs the same input.
eval_pipeline = [
    dict(type='Resize', size=256),
    dict(type='CenterCrop', size=224),
    dict(type='ToTensor'),
    dict(type='Normalize', mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    dict(type='Sobel'),
]
custom_hooks = [
    dict(
        type='DeepClusterHook',
        extractor=dict(samples_per_gpu=128, workers_per_gpu=8, pipeline={{_base_.extract_pipeline}}),
        clustering=dict(type='Kmeans', k={{_base_.num_classes}}, pca_dim=256),
        unif_sampling=True,
        reweight=False,
        reweight_pow=0.5,
        initial=True,  # cluster before the first epoch
        interval=1)
]
